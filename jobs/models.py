"""System tables of the job machinery. None is tenant data; the relay and workers read across tenants."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, utcnow


class OutboxJob(Base):
    """A job written in the same transaction as the change that caused it; sent after commit,
    and not before `not_before` when it has one.

    The row stays until a worker has finished the job (or dead-lettered it), so a job lost in
    the broker, a flushed Redis or a killed in-process worker is sent again.
    """

    __tablename__ = "outbox_jobs"
    # The relay's probes: rows never sent and due (by `not_before`), and the next time one falls due.
    __table_args__ = (Index("ix_outbox_jobs_pending", "dispatched_at", "not_before"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    actor_name: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    tenant_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_before: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    dispatch_count: Mapped[int] = mapped_column(default=0)


class FailedJob(Base):
    """A dead letter: a job that ran out of retries. `churnsaver jobs failed` lists them."""

    __tablename__ = "failed_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    actor_name: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    retries: Mapped[int]
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleSlot(Base):
    """When a periodic job is next due. Workers claim a run by moving `next_run_at` forward."""

    __tablename__ = "schedule_slots"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]
