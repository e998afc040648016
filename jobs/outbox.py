"""The transactional outbox: the only way domain code enqueues a job.

`enqueue` writes a row in the caller's transaction. Nothing is sent until that transaction
commits; a rollback drops the job with everything else. After a commit that enqueued
something, the relay in this process is woken to send it at once.

The rows are kept with the session and inserted as the transaction commits, all in one
statement: written as ORM objects, each commit that enqueued paid for a unit-of-work flush, which
was the largest single cost of storing a group commit's webhook deliveries.
"""

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.pg_driver import DriverUnitOfWork, before_commit
from churnsaver.backend.core.unit_of_work import UnitOfWork
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.registry import consumers_of, get_job

_ROWS = "outbox_rows"  # enqueued in this transaction, not written yet
_NOTIFIED = "outbox_notified"  # (tenant, event type) already notified in this transaction
_PENDING = "outbox_pending"  # written in this transaction: wake the relays after the commit
_relay_wakers: list[Callable[[], object]] = []
# Built once: a statement built per commit is keyed for SQLAlchemy's compiled cache on every run.
_INSERT = insert(OutboxJob.__table__)


def enqueue(
    session: AsyncSession | Session | UnitOfWork,
    job_name: str,
    *,
    tenant_id: uuid.UUID | None = None,
    not_before: datetime | None = None,
    **kwargs: Any,
) -> uuid.UUID:
    """Enqueue job `job_name` with JSON-serialisable `kwargs`, in `session`'s transaction; returns
    the outbox row's id (for `withdraw`).

    A job enqueued for a tenant is called with `tenant_id` too (as a string), to re-check it.
    With `not_before` (timezone-aware), the job is sent no earlier than that time; without, as
    soon as the transaction has committed.
    """
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware (UTC), not naive")
    kwargs = _job_kwargs(job_name, tenant_id, kwargs)
    # Every row has every key, so a commit's rows insert as one executemany; the creation time
    # is the model's default.
    row_id = uuid.uuid4()
    row = {"id": row_id, "actor_name": job_name, "kwargs": kwargs, "tenant_id": tenant_id, "not_before": not_before}
    session.info.setdefault(_ROWS, []).append(row)
    return row_id


async def withdraw(session: AsyncSession, row_id: uuid.UUID) -> bool:
    """Take back, in `session`'s transaction, a committed job the relay has not sent: if that
    transaction commits, the job never runs (its work was done there). False when it has been
    sent already; then it runs, as any job must be able to run twice."""
    never_sent = and_(OutboxJob.id == row_id, OutboxJob.dispatched_at.is_(None))
    return bool((await session.execute(delete(OutboxJob).where(never_sent))).rowcount)  # type: ignore[attr-defined]


def notify(session: AsyncSession | Session | UnitOfWork, tenant_id: uuid.UUID, event_type: str) -> None:
    """The transaction records `event_type` domain events of the tenant: enqueue each consumer of
    that type (`jobs.registry.consumer`), once per transaction however many times it is told."""
    notified = session.info.setdefault(_NOTIFIED, set())
    if (tenant_id, event_type) in notified:
        return
    notified.add((tenant_id, event_type))
    for job_name in consumers_of(event_type):
        enqueue(session, job_name, tenant_id=tenant_id)


def _job_kwargs(job_name: str, tenant_id: uuid.UUID | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a job known to the registry (KeyError if not): with its tenant, as text."""
    get_job(job_name)
    return kwargs if tenant_id is None else kwargs | {"tenant_id": str(tenant_id)}


def on_commit_wake(waker: Callable[[], object]) -> Callable[[], None]:
    """Call `waker` after any commit that enqueued jobs; returns a function that unregisters it."""
    _relay_wakers.append(waker)
    return lambda: _relay_wakers.remove(waker)


def wake_relays() -> None:
    """Call every registered waker: jobs were committed (here, or by the process that says so)."""
    for waker in list(_relay_wakers):
        waker()


@event.listens_for(Session, "before_commit")
def _write_enqueued(session: Session) -> None:
    session.info.pop(_NOTIFIED, None)
    if rows := session.info.pop(_ROWS, None):
        # One row (a group commit's one job) as a single execution, not an executemany of one.
        session.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
        session.info[_PENDING] = True


@before_commit
def _write_enqueued_on_driver(work: DriverUnitOfWork) -> None:
    """`_write_enqueued` for a unit of work on PostgreSQL's driver, which applies no column
    defaults or types: they are filled in here."""
    work.info.pop(_NOTIFIED, None)
    for row in work.info.pop(_ROWS, ()):
        values = {"id": uuid.uuid4(), "created_at": utcnow(), "dispatch_count": 0, **row}
        work.execute(_INSERT, values | {"kwargs": json.dumps(row["kwargs"])})
        if wake_relays not in work.after_commit:
            work.after_commit.append(wake_relays)


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        wake_relays()


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_ROWS, None)
    session.info.pop(_NOTIFIED, None)
    session.info.pop(_PENDING, None)
