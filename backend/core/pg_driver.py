"""PostgreSQL's unit of work on asyncpg itself, for the hottest writes.

SQLAlchemy's asyncpg adapter costs a greenlet switch, a lock and its cursor and result machinery
per statement, more than asyncpg's own work for a short one (docs/performance.md). Here the work,
synchronous code, runs in one greenlet against the asyncpg connection of a pooled engine
connection: statements are still built with SQLAlchemy Core, compiled once, and run by asyncpg
with their values as given. BEGIN with the tenant is one round trip, then the work, then COMMIT.

The transaction is a tenant's like any other: its connection acts as the app role, and the tenant
is set for the transaction only, so row-level security binds every statement in it.
"""

import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util import await_, greenlet_spawn

from churnsaver.backend.core.unit_of_work import UnitOfWork

T = TypeVar("T")
TENANT_SETTING = "churnsaver.tenant_id"
UNIT_OF_WORK = "driver_unit_of_work"  # in the `info` of a driver unit of work's session

_before_commit: list[Callable[["DriverUnitOfWork"], None]] = []


def before_commit(listener: Callable[["DriverUnitOfWork"], None]) -> Callable[["DriverUnitOfWork"], None]:
    """Call `listener` with each driver unit of work as its work ends, before the commit: what a
    session's `before_commit` event is to a session (the outbox writes its rows there)."""
    _before_commit.append(listener)
    return listener


class DriverStatement:
    """A Core statement compiled once for asyncpg, run with its values as asyncpg takes them."""

    def __init__(self, statement: Executable, dialect: Dialect, *, columns: tuple[str, ...] | None = None) -> None:
        # `columns`: for an INSERT of a table's defaults too, the columns the values give.
        compiled = statement.compile(dialect=dialect, column_keys=list(columns) if columns else None)  # type: ignore[attr-defined]
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ())

    def arguments(self, values: Mapping[str, Any] | None) -> list[Any]:
        """`values` by parameter name, in the order of the statement's $1, $2, ..."""
        return [values[name] for name in self._names] if values else []


@lru_cache(maxsize=256)
def _compiled(statement: Executable, dialect: Dialect, columns: tuple[str, ...] | None) -> DriverStatement:
    return DriverStatement(statement, dialect, columns=columns)


def _driver_statement(statement: Executable, dialect: Dialect, values: Mapping[str, Any] | None) -> DriverStatement:
    # An INSERT of values compiles for the columns given; anything else for its own parameters.
    given = isinstance(statement, Insert) and statement.select is None and values
    return _compiled(statement, dialect, tuple(values) if given and values else None)


class DriverUnitOfWork(UnitOfWork):
    def __init__(self, connection: AsyncConnection, driver: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._driver = driver  # the asyncpg connection
        self.dialect = dialect
        self.info: dict[str, Any] = {}
        self.after_commit: list[Callable[[], None]] = []  # called once committed
        self._session: Session | None = None

    def execute(self, statement: Executable, values: Mapping[str, Any] | None = None) -> int:
        compiled = _driver_statement(statement, self.dialect, values)
        status = await_(self._driver.execute(compiled.sql, *compiled.arguments(values)))
        count = status.rpartition(" ")[2]  # "INSERT 0 3", "UPDATE 3"
        return int(count) if count.isdigit() else 0

    def fetch_column(self, statement: Executable, values: Mapping[str, Any] | None = None) -> list[Any]:
        compiled = _driver_statement(statement, self.dialect, values)
        return [row[0] for row in await_(self._driver.fetch(compiled.sql, *compiled.arguments(values)))]

    @property
    def session(self) -> Session:
        if self._session is None:
            # Autocommit, as SQLAlchemy sees it: its adapter then begins nothing of its own, and
            # the session's statements run in the transaction this unit of work began.
            connection = self._connection.sync_connection
            assert connection is not None
            # Its commit is not the transaction's: `info` names the unit of work, whose own commit is.
            bind = connection.execution_options(isolation_level="AUTOCOMMIT")
            self._session = Session(bind=bind, info={UNIT_OF_WORK: self})
        return self._session

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """`work`, then what must be written before the commit; in the unit of work's greenlet."""
        result = work(self)
        if self._session is not None:
            self._session.commit()
            self._session.close()
        for listener in _before_commit:
            listener(self)
        return result


async def run_unit_of_work(engine: AsyncEngine, tenant_id: uuid.UUID, work: Callable[[UnitOfWork], T]) -> T:
    """`work` in a transaction of `tenant_id`'s on a pooled connection's asyncpg connection,
    committed when it returns and rolled back if it raises."""
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # a connection checked out of the pool is open
        # BEGIN and the tenant in one round trip. A simple query takes no parameters; the
        # tenant goes in as a UUID's canonical text, which holds nothing but hex digits and dashes.
        tenant = str(uuid.UUID(str(tenant_id)))
        await driver.execute(f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{tenant}', true)")
        unit = DriverUnitOfWork(connection, driver, engine.dialect)
        try:
            result = await greenlet_spawn(unit.run, work)
            await driver.execute("COMMIT")
        except BaseException:
            await _roll_back(connection, driver)
            raise
    for callback in unit.after_commit:
        callback()
    return result


async def _roll_back(connection: AsyncConnection, driver: Any) -> None:
    """End the failed transaction, or, if the connection cannot (broken, or cancelled in the
    middle of a statement), drop the connection rather than give it back to the pool."""
    try:
        if driver.is_in_transaction():
            await driver.execute("ROLLBACK")
    except Exception:
        await connection.invalidate()
