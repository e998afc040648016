"""Cases for the API and the CLI: lists, one case, its timeline, what people do to a case, settings.

Every function takes the auth subject and checks its scope here: reads need `read`, everything
that changes a case needs `write`, whoever calls. Nothing commits: the caller's unit of work does.

What a person does to a case is recorded as a case event (actor: the subject). Dismissing,
reopening and marking lost are manual overrides: stored as case events, they are applied by the
same reconciliation that applies billing truth (`reconcile.py`), in time order with it, so a
later evaluation never undoes them, and the case row always says what the derivation says.

`touch`, `touch_first`, `offer_shown`, `offer_accepted` and `offer_failed` are the internal API the campaign
and offer domains call (no subject: they act for the system, named by `actor`).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from churnsaver.backend.cases.derivation import ManualAction
from churnsaver.backend.cases.models import CaseEvent, CaseEventType, CaseStatus, RecoveryCase
from churnsaver.backend.cases.publishing import publish_case_event
from churnsaver.backend.cases.reconcile import reconcile_customers
from churnsaver.backend.cases.repository import CaseEventRepository, CaseQuery, CaseRepository
from churnsaver.backend.cases.settings import CaseSettings, load_settings, store_settings
from churnsaver.backend.core.bulk import is_one_of, update_by_id
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import Conflict, InvalidInput, NotFound
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.core.pagination import Page
from churnsaver.tenants.auth import AuthSubject

MAX_NOTE = 10_000
MAX_REASON = 2_000
MAX_ASSIGNEE = 255


class CaseOrder(StrEnum):
    PRIORITY_DESC = "PRIORITY_DESC"
    OPENED_AT_DESC = "OPENED_AT_DESC"


@dataclass(frozen=True, slots=True)
class CaseFilter:
    status: list[str] | None = None
    kind: list[str] | None = None
    customer_id: uuid.UUID | None = None
    overdue: bool | None = None
    assignee: str | None = None


def is_overdue(case: RecoveryCase, now: datetime | None = None) -> bool:
    """Open, never touched, and past its first-touch deadline."""
    return (
        case.status == CaseStatus.open.value
        and case.first_touch_at is None
        and (now or utcnow()) > case.first_touch_due_at
    )


async def list_cases(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    filter: CaseFilter | None = None,
    order: CaseOrder = CaseOrder.PRIORITY_DESC,
    first: int | None = None,
    after: str | None = None,
    with_total: bool = False,
) -> Page[RecoveryCase]:
    """A page of the tenant's cases matching `filter`; counting them all only `with_total`."""
    subject.require_read()
    filter = filter or CaseFilter()
    query = CaseQuery(
        statuses=filter.status,
        kinds=filter.kind,
        customer_id=filter.customer_id,
        overdue=filter.overdue,
        assignee=filter.assignee,
    )
    cases = CaseRepository(session, subject.tenant_id)
    statement = cases.select_matching(query, utcnow())
    if order is CaseOrder.OPENED_AT_DESC:
        return await cases.page_by_opening(statement, first=first, after=after, with_total=with_total)
    return await cases.page_by_priority(statement, first=first, after=after, with_total=with_total)


async def get_case(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID) -> RecoveryCase:
    """NotFound when the tenant has no such case, whether it is missing or another tenant's."""
    subject.require_read()
    return await CaseRepository(session, subject.tenant_id).get_or_raise(case_id, what="case")


async def get_cases(session: AsyncSession, subject: AuthSubject, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The tenant's cases among `case_ids`, by id (a dataloader's batch); others are left out."""
    subject.require_read()
    return await CaseRepository(session, subject.tenant_id).get_many(case_ids)


async def case_events(
    session: AsyncSession,
    subject: AuthSubject,
    case_id: uuid.UUID,
    *,
    first: int | None = None,
    after: str | None = None,
) -> Page[CaseEvent]:
    """A case's timeline, oldest first; NotFound as `get_case`."""
    await get_case(session, subject, case_id)
    return await CaseEventRepository(session, subject.tenant_id).page_of_case(case_id, first=first, after=after)


async def case_events_of_cases(
    session: AsyncSession, subject: AuthSubject, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
) -> dict[uuid.UUID, Page[CaseEvent]]:
    """The same page of each case's timeline (a dataloader's batch); ids of other tenants give empty pages."""
    subject.require_read()
    return await CaseEventRepository(session, subject.tenant_id).pages_of_cases(case_ids, first=first, after=after)


async def add_note(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID, text: str) -> RecoveryCase:
    subject.require_write()
    text = (text or "").strip()
    if not text:
        raise InvalidInput("a note needs some text")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"a note is at most {MAX_NOTE:,} characters (this one has {len(text):,})")
    case = await _case(session, subject, case_id)
    await _record(session, case, CaseEventType.note, subject.log_label, {"text": text})
    return case


async def assign(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID, assignee: str | None) -> RecoveryCase:
    """Assign the case to `assignee` (a member id, or any name until members exist); None unassigns."""
    subject.require_write()
    if assignee is not None:
        assignee = assignee.strip()
        if not assignee:
            raise InvalidInput("an assignee cannot be blank (give none to unassign)")
        if len(assignee) > MAX_ASSIGNEE:
            raise InvalidInput(f"an assignee is at most {MAX_ASSIGNEE} characters")
    case = await _case(session, subject, case_id)
    if case.assignee == assignee:
        return case
    data = {"from": case.assignee, "to": assignee}
    case.assignee = assignee
    case.updated_at = utcnow()
    await _record(session, case, CaseEventType.assigned, subject.log_label, data)
    return case


async def dismiss(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID, reason: str) -> RecoveryCase:
    subject.require_write()
    checked = _reason(reason, required=True)
    case = await _case(session, subject, case_id)
    if case.status != CaseStatus.open.value:
        raise Conflict(f"only an open case can be dismissed; this one is {case.status}")
    return await _override(session, subject, case, "dismissed", checked)


async def mark_lost(
    session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID, reason: str | None = None
) -> RecoveryCase:
    subject.require_write()
    reason = _reason(reason, required=False)
    case = await _case(session, subject, case_id)
    if case.status not in (CaseStatus.open.value, CaseStatus.recovered.value):
        raise Conflict(f"only an open or recovered case can be marked lost; this one is {case.status}")
    if case.verified_at is not None:
        raise Conflict("a verified recovery cannot be marked lost")
    return await _override(session, subject, case, "lost", reason)


async def reopen(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID) -> RecoveryCase:
    subject.require_write()
    case = await _case(session, subject, case_id)
    if case.status == CaseStatus.open.value:
        raise Conflict("the case is already open")
    if case.verified_at is not None:
        raise Conflict("a verified recovery cannot be reopened")
    other = await CaseRepository(session, subject.tenant_id).open_of_kind(case.customer_id, case.kind)
    if other is not None:
        raise Conflict("the customer already has an open case of this kind: work that one")
    return await _override(session, subject, case, "reopened", None)


async def get_settings(session: AsyncSession, subject: AuthSubject) -> CaseSettings:
    subject.require_read()
    return await load_settings(session, subject.tenant_id)


async def update_settings(session: AsyncSession, subject: AuthSubject, **changes: Any) -> CaseSettings:
    """The settings with `changes` (None: unchanged), validated (InvalidInput says what is wrong) and
    stored. Cases already open keep their windows and deadlines; new ones use the new settings."""
    subject.require_write()
    settings = (await load_settings(session, subject.tenant_id)).updated(**changes)
    await store_settings(session, subject.tenant_id, settings)
    return settings


async def touch(
    session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, at: datetime, actor: str
) -> RecoveryCase:
    """The first contact with the customer (a campaign's message went out): meets the SLA."""
    case = await CaseRepository(session, tenant_id).get_or_raise(case_id, what="case")
    if case.first_touch_at is None or at < case.first_touch_at:
        case.first_touch_at = at
        case.updated_at = utcnow()
    await _record(session, case, CaseEventType.touched, actor, {}, occurred_at=at)
    return case


async def touch_first(
    session: AsyncSession, tenant_id: uuid.UUID, touches: dict[uuid.UUID, datetime], actor: str
) -> None:
    """`touch` for a batch of cases (case id -> when), in a fixed number of statements: the first
    contact of each case not touched yet meets its SLA and is recorded on its timeline."""
    if not touches:
        return
    cases = CaseRepository(session, tenant_id)
    statement = cases.select_readable().where(
        is_one_of(session, RecoveryCase.id, sorted(touches, key=str)), RecoveryCase.first_touch_at.is_(None)
    )
    untouched = list((await session.execute(statement)).scalars())
    now = utcnow()
    rows = [{"id": case.id, "first_touch_at": touches[case.id], "updated_at": now} for case in untouched]
    await update_by_id(session, RecoveryCase, tenant_id, rows)
    events = [
        CaseEvent(
            tenant_id=tenant_id,
            case_id=case.id,
            type=CaseEventType.touched.value,
            key=f"{CaseEventType.touched.value}:{ordered_uuid()}",
            occurred_at=touches[case.id],
            actor=actor,
            data={},
        )
        for case in untouched
    ]
    session.add_all(events)
    await session.flush()
    for case, event in zip(untouched, events, strict=True):
        set_committed_value(case, "first_touch_at", touches[case.id])
        publish_case_event(session, case, event)


async def open_cases_of_customer(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, *, limit: int = 10
) -> list[RecoveryCase]:
    """The customer's open cases, most pressing first (the widget asks which one an offer answers)."""
    return await CaseRepository(session, tenant_id).open_of_customer(customer_id, limit)


async def offer_shown(
    session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, at: datetime, actor: str, data: dict[str, Any]
) -> None:
    case = await CaseRepository(session, tenant_id).get_or_raise(case_id, what="case")
    await _record(session, case, CaseEventType.offer_shown, actor, data, occurred_at=at)


async def offer_accepted(
    session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, at: datetime, actor: str, data: dict[str, Any]
) -> None:
    case = await CaseRepository(session, tenant_id).get_or_raise(case_id, what="case")
    await _record(session, case, CaseEventType.offer_accepted, actor, data, occurred_at=at)


async def offer_failed(
    session: AsyncSession, tenant_id: uuid.UUID, case_id: uuid.UUID, at: datetime, actor: str, data: dict[str, Any]
) -> None:
    case = await CaseRepository(session, tenant_id).get_or_raise(case_id, what="case")
    await _record(session, case, CaseEventType.offer_failed, actor, data, occurred_at=at)


async def _case(session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID) -> RecoveryCase:
    case = await CaseRepository(session, subject.tenant_id).get(case_id)
    if case is None:
        raise NotFound("case")
    return case


def _reason(reason: str | None, *, required: bool) -> str | None:
    reason = (reason or "").strip() or None
    if reason is None and required:
        raise InvalidInput("a reason is required")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(f"a reason is at most {MAX_REASON:,} characters")
    return reason


async def _override(
    session: AsyncSession, subject: AuthSubject, case: RecoveryCase, action: str, reason: str | None
) -> RecoveryCase:
    """Record a manual override and let reconciliation apply it, with billing truth, in time order."""
    now = utcnow()
    before = case.status
    manual = ManualAction(kind=case.kind, trigger_key=case.trigger_key, action=action, at=now, reason=reason)
    data = {"manual": action, "from": before, "reason": reason}
    event = await _record(
        session, case, CaseEventType.status_changed, subject.log_label, data, key=manual.key, publish=False
    )
    await reconcile_customers(session, subject.tenant_id, [case.customer_id], now, actor=subject.log_label)
    await session.refresh(case)
    event.data = {**data, "to": case.status}
    publish_case_event(session, case, event)
    return case


async def _record(
    session: AsyncSession,
    case: RecoveryCase,
    event_type: CaseEventType,
    actor: str,
    data: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    key: str | None = None,
    publish: bool = True,
) -> CaseEvent:
    """A person's (or a campaign's) entry on the case's timeline, with a key of its own; published
    after the commit."""
    event = CaseEvent(
        tenant_id=case.tenant_id,
        case_id=case.id,
        type=event_type.value,
        key=key or f"{event_type.value}:{ordered_uuid()}",
        occurred_at=occurred_at or utcnow(),
        actor=actor,
        data=data,
    )
    session.add(event)
    await session.flush()
    if publish:
        publish_case_event(session, case, event)
    return event
