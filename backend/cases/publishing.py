"""Case events as live news: each recorded case event is published on its tenant's channel once
the transaction that recorded it commits (`core/pubsub.py`); the GraphQL `caseEvents`
subscription delivers them. The message names the case, so a subscriber filters by kind without
reading the database."""

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pubsub import publish_after_commit


class CaseLike(Protocol):
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer_id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...


class CaseEventLike(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


def case_events_channel(tenant_id: uuid.UUID) -> str:
    return f"case_events:{tenant_id}"


def case_event_message(case: CaseLike, event: CaseEventLike) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "case_id": str(case.id),
        "customer_id": str(case.customer_id),
        "kind": case.kind,
        "status": case.status,
        "type": event.type,
        "key": event.key,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "data": event.data,
    }


def publish_case_event(session: AsyncSession, case: CaseLike, event: CaseEventLike) -> None:
    publish_after_commit(session, case_events_channel(case.tenant_id), case_event_message(case, event))
