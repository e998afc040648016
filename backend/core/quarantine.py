"""Applying a tenant's items so that one which cannot be applied is set aside, not the batch.

Every job that processes a tenant's items (inbox rows, customers to score) runs its work with
`run_isolating`. The work applies its items through the `Batch` it is given:

- first in one transaction, all at once: the normal case pays nothing for isolation;
- if that fails, `is_transient` tells a failure of the moment (the database unavailable, the
  connection lost, a serialization failure, a deadlock, a lock or statement timeout) from one
  that the items' content causes. A transient failure leaves the transaction rolled back and is
  raised: the job is retried, and nothing is set aside;
- any other failure runs the work again in a new transaction, isolating: the items are applied
  in order in savepoints, a failing group split in halves down to the items that fail alone.
  Those come back as `Failure`s with their reason, for the caller to set aside (an inbox row is
  quarantined); every other item is applied. A transient failure meanwhile is raised as above.
"""

import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg
import structlog
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import Database

T = TypeVar("T")
R = TypeVar("R")
logger = structlog.get_logger(__name__)

MAX_REASON_CHARS = 1000
# SQLSTATE classes and codes of failures that a retry can outlive: connection exceptions,
# insufficient resources, operator intervention (shutdown, cancel, timeouts), and a
# transaction's serialization failure, deadlock or lock timeout.
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
TRANSIENT_SQLSTATES = ("40001", "40P01", "55P03", "55006")
# SQLite primary result codes of the same kind: busy, locked, out of memory, I/O error, disk
# full, cannot open the file, lock protocol error.
TRANSIENT_SQLITE_CODES = (5, 6, 7, 10, 13, 14, 15)


@dataclass(frozen=True, slots=True)
class Failure(Generic[T]):
    """An item that cannot be applied, and why."""

    item: T
    reason: str
    kind: str  # the error's class: what a log may say of it, since the reason may quote the item


@dataclass(slots=True)
class Applied(Generic[T, R]):
    """What applying a batch's items gave: each applied group's result, and the items that failed."""

    results: list[R] = field(default_factory=list)
    failures: list[Failure[T]] = field(default_factory=list)


class Batch:
    """How a unit of work applies its items: all at once, or (`isolating`) in savepoints."""

    def __init__(self, session: AsyncSession, *, isolating: bool) -> None:
        self.session = session
        self.isolating = isolating

    async def apply(self, items: Sequence[T], apply: Callable[[list[T]], Awaitable[R]]) -> Applied[T, R]:
        """`apply` the items, in order. Not isolating, an error is raised as it comes; isolating,
        the items whose application fails alone are returned as failures, the rest applied."""
        applied: Applied[T, R] = Applied()
        if not self.isolating:
            applied.results.append(await apply(list(items)))
        elif len(items) > 1:
            await self._apply_halves(list(items), apply, applied)  # the whole batch has failed already
        elif items:
            await self._apply_or_isolate(list(items), apply, applied)
        return applied

    async def _apply_halves(
        self, items: list[T], apply: Callable[[list[T]], Awaitable[R]], into: Applied[T, R]
    ) -> None:
        middle = len(items) // 2
        await self._apply_or_isolate(items[:middle], apply, into)
        await self._apply_or_isolate(items[middle:], apply, into)

    async def _apply_or_isolate(
        self, items: list[T], apply: Callable[[list[T]], Awaitable[R]], into: Applied[T, R]
    ) -> None:
        try:
            async with self.session.begin_nested():
                result = await apply(items)
        except Exception as error:
            if is_transient(error):
                raise
            if len(items) == 1:
                into.failures.append(Failure(items[0], describe(error), type(_driver_error(error)).__name__))
            else:
                await self._apply_halves(items, apply, into)
            return
        into.results.append(result)


async def run_isolating(
    db: Database, tenant_id: uuid.UUID, work: Callable[[AsyncSession, Batch], Awaitable[R]], *, what: str
) -> R:
    """`work(session, batch)` in a tenant unit of work, committed; after a failure that is not
    transient, once more with an isolating batch (see the module docstring). `what` names the
    work in the log."""
    try:
        async with db.tenant_unit_of_work(tenant_id) as session:
            return await work(session, Batch(session, isolating=False))
    except Exception as error:
        if is_transient(error):
            raise
        # The error's kind only: its message may quote the items' content.
        logger.warning(
            "batch.isolating", what=what, tenant_id=str(tenant_id), error=type(_driver_error(error)).__name__
        )
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await work(session, Batch(session, isolating=True))


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is a failure of the moment rather than
    of the data: see the module docstring."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _transient_itself(current):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.DisconnectionError | exc.TimeoutError | OSError):
        return True  # OSError: connection refused or reset, and TimeoutError
    if isinstance(error, asyncpg.InterfaceError) and not isinstance(error, ValueError) and "closed" in str(error):
        return True  # the connection closed under a statement (asyncpg's DataError is a ValueError: data)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in TRANSIENT_SQLITE_CODES
    return False


def describe(error: BaseException) -> str:
    """`error` in one line for an operator: the driver's own error, without the statement."""
    cause = _driver_error(error)
    message = f"{type(cause).__name__}: {cause}" if not isinstance(cause, ValueError) else str(cause)
    # Stored beside the item: a lone surrogate or a NUL quoted from the item would fail the store too.
    storable = message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return " ".join(storable.split())[:MAX_REASON_CHARS]


def _driver_error(error: BaseException) -> BaseException:
    """The database driver's exception behind SQLAlchemy's wrapper (and its async adapter's), if any."""
    orig = getattr(error, "orig", None)
    if orig is None:
        return error
    return orig.__cause__ if isinstance(orig.__cause__, Exception) else orig
