"""The unit of work `Database.run_unit_of_work` hands to synchronous code: one tenant transaction.

Domain code writes through it and never learns the backend: on SQLite it wraps a session of the
writer thread (sqlite_writer.py), on PostgreSQL the asyncpg connection itself (pg_driver.py).
Statements are SQLAlchemy Core, their values given by parameter name in forms both take: text,
numbers, UUIDs (as 32 hex digits where the statement leaves a parameter untyped), aware
datetimes, dates, lists of these, and JSON as its text.
Jobs are enqueued with `jobs.outbox.enqueue(work, ...)`, as with a session.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

T = TypeVar("T")


class UnitOfWork(ABC):
    """One tenant transaction, committed when the work given it returns."""

    dialect: Dialect
    info: dict[str, Any]  # what listeners keep for the transaction (the outbox: its rows)

    @abstractmethod
    def execute(self, statement: Executable, values: Mapping[str, Any] | None = None) -> int:
        """Run `statement`; the number of rows it changed."""

    @abstractmethod
    def fetch_column(self, statement: Executable, values: Mapping[str, Any] | None = None) -> list[Any]:
        """The first column of the rows `statement` returns."""

    @property
    @abstractmethod
    def session(self) -> Session:
        """An ORM session in the same transaction, for work that needs more than Core statements."""


class SessionUnitOfWork(UnitOfWork):
    """A unit of work in a synchronous session's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.dialect = session.get_bind().dialect
        self.info = session.info  # so the session's own commit writes what the outbox kept

    def execute(self, statement: Executable, values: Mapping[str, Any] | None = None) -> int:
        # A DML statement's result is a CursorResult; Session.execute types it as a plain Result.
        return cast(CursorResult[Any], self._session.execute(statement, values)).rowcount

    def fetch_column(self, statement: Executable, values: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self._session.execute(statement, values).scalars())

    @property
    def session(self) -> Session:
        return self._session


async def run_in_session(session: AsyncSession, work: Callable[[UnitOfWork], T]) -> T:
    """`work` in the transaction of an open async session: unit-of-work code called from a
    service that already holds one."""
    return await session.run_sync(lambda sync_session: work(SessionUnitOfWork(sync_session)))
