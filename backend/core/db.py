"""Database engine, sessions and the declarative base.

Two kinds of session exist. A *tenant session* carries a tenant id: every transaction it opens
tells PostgreSQL which tenant is acting (`set_config('churnsaver.tenant_id', …, true)`), and on
PostgreSQL its connections have switched to the non-owner app role, so row-level security hides
every other tenant's rows. A *system session* is for work that is not one tenant's: auth
look-ups, the outbox relay, the scheduler, the CLI's admin commands.
"""

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import DateTime, MetaData, Table, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from churnsaver.backend.core import pg_driver
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.pg_driver import TENANT_SETTING
from churnsaver.backend.core.sqlite_writer import SQLiteWriter
from churnsaver.backend.core.unit_of_work import SessionUnitOfWork, UnitOfWork

T = TypeVar("T")
# Writing transactions worth running at once on PostgreSQL: a second overlaps the first's round
# trips, more did no better (docs/performance.md). SQLite has one writer at a time.
POSTGRES_CONCURRENT_WRITERS = 2

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive values and returns them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}

    if TYPE_CHECKING:
        # Every model is declared with a table, which SQLAlchemy types as any FROM clause.
        __table__: ClassVar[Table]


class TenantOwned:
    """Mixin for every row that belongs to one tenant: RLS and the scoping helper key on it."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(index=True)


def insert_for(session: AsyncSession | Session) -> Any:
    """The INSERT construct of the session's dialect, which has `on_conflict_do_nothing` on both backends."""
    return dialect_insert(session.get_bind().dialect)


def dialect_insert(dialect: Dialect) -> Any:
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


def _is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def set_sqlite_pragmas(engine: Engine) -> None:
    """WAL, so readers never wait for the writer; foreign keys; a 30 s wait for the write lock."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def create_engine(settings: Settings, *, app_role: bool) -> AsyncEngine:
    """An engine for `settings`; `app_role` makes PostgreSQL connections act as the RLS-bound role."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # As many pooled connections as PostgreSQL gets: opening a SQLite connection starts a thread.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=10, max_overflow=20)
        set_sqlite_pragmas(engine.sync_engine)
        return engine

    # The app role is a setting of the connection itself, sent when it opens. A `SET ROLE` run on
    # a new connection joined its first transaction, and a rollback of that transaction undid it:
    # the connection went back to the login role, which bypasses row-level security.
    connect_args = {"server_settings": {"role": settings.database_role}} if app_role else {}
    engine = create_async_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args)
    check_connections_on_checkout(engine.sync_engine)
    return engine


# A pooled PostgreSQL connection used this recently is taken to be alive without a round trip
# to ask, as HikariCP does (its aliveBypassWindowMs, 500 ms by default).
ALIVE_WITHOUT_PING_SECONDS = 0.5
_LAST_USED = "churnsaver_last_used"


def check_connections_on_checkout(engine: Engine) -> None:
    """Replace a dead pooled connection before it is handed out, asking the server only when
    the connection has been idle.

    SQLAlchemy's `pool_pre_ping` asks on every checkout, and on asyncpg its ping is three round
    trips (BEGIN, a query, ROLLBACK), as many as a group commit's own (docs/performance.md). A
    connection the server closed (a restart, `pg_terminate_backend`) is known closed already:
    asyncpg saw its socket close. One left idle is pinged, since its peer may have gone without
    a word (a firewall's or NAT's timeout). A connection found dead is replaced by a new one; a
    server that went away under load may still fail the transaction that meets it first, which
    invalidates the pool, as with any error in flight."""

    @event.listens_for(engine, "connect")
    def _note_connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _note_returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("the server closed the connection")
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) > ALIVE_WITHOUT_PING_SECONDS:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise exc.DisconnectionError(f"the connection did not answer a ping: {error}") from error


class TenantScopedSession(Session):
    """A session acting for one tenant (`info["tenant_id"]`); see the module docstring."""


# Built once: it runs at the start of every tenant transaction.
SET_TENANT = text("SELECT set_config(:name, :value, true)")


@event.listens_for(TenantScopedSession, "after_begin")
def _set_tenant_for_transaction(session: Session, _transaction: Any, connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    tenant_id = session.info.get("tenant_id")
    # Transaction-local: the setting ends with the transaction, so a pooled connection never
    # carries one tenant's id into another's work. No tenant means the empty string: no rows.
    connection.execute(SET_TENANT, {"name": TENANT_SETTING, "value": str(tenant_id) if tenant_id else ""})


class Database:
    """The engines and session factories of one event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings, app_role=True)
        self.system_engine = self.engine if not _is_postgres(self.engine) else create_engine(settings, app_role=False)
        self._tenant_sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=TenantScopedSession
        )
        self._system_sessions = async_sessionmaker(self.system_engine, expire_on_commit=False)
        self._sqlite_writer = None
        if not _is_postgres(self.engine):
            url = self.engine.url.set(drivername="sqlite").render_as_string(hide_password=False)
            self._sqlite_writer = SQLiteWriter(url, on_connect=set_sqlite_pragmas, session_class=TenantScopedSession)

    def tenant_session(self, tenant_id: uuid.UUID | None) -> AsyncSession:
        session = self._tenant_sessions()
        session.sync_session.info["tenant_id"] = tenant_id
        return session

    def system_session(self) -> AsyncSession:
        return self._system_sessions()

    @asynccontextmanager
    async def tenant_unit_of_work(self, tenant_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
        """A tenant session that commits when the block ends and rolls back if it raises."""
        async with self.tenant_session(tenant_id) as session, session.begin():
            yield session

    @property
    def concurrent_writers(self) -> int:
        """How many writing transactions are worth running at once."""
        return 1 if self._sqlite_writer is not None else POSTGRES_CONCURRENT_WRITERS

    async def run_unit_of_work(self, tenant_id: uuid.UUID, work: Callable[[UnitOfWork], T]) -> T:
        """`work(unit_of_work)`, synchronous code, in one tenant transaction committed when it
        returns (unit_of_work.py): on SQLite in one round trip to the writer thread
        (sqlite_writer.py), on PostgreSQL in one greenlet on the asyncpg connection itself
        (pg_driver.py). For short, frequent writes such as the receivers' group commits, and for
        bulk writes that would otherwise wait on the event loop for each statement."""
        if self._sqlite_writer is not None:
            return await self._sqlite_writer.run(tenant_id, lambda session: work(SessionUnitOfWork(session)))
        return await pg_driver.run_unit_of_work(self.engine, tenant_id, work)

    @asynccontextmanager
    async def system_unit_of_work(self) -> AsyncIterator[AsyncSession]:
        async with self.system_session() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._sqlite_writer is not None:
            await self._sqlite_writer.dispose()
        await self.engine.dispose()
        if self.system_engine is not self.engine:
            await self.system_engine.dispose()
