"""Case types: the case, its trigger, its timeline entries, the tenant's case settings, and connections."""

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.relay import to_base64
from strawberry.scalars import JSON

from churnsaver.backend.cases import models
from churnsaver.backend.cases.models import CaseEvent as CaseEventRow
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.service import is_overdue
from churnsaver.backend.cases.settings import CaseSettings
from churnsaver.graphql.channels.types import MessageConnection, MessageType
from churnsaver.graphql.customers.types import CustomerType
from churnsaver.graphql.dataloaders.case_events import CasePage
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection, connection_from_page
from churnsaver.graphql.risk.types import RiskTier

if TYPE_CHECKING:
    from churnsaver.graphql.offers.types import OfferChoiceType, RedemptionType


@strawberry.enum(name="CaseKind", description="What opened the case.")
class CaseKind(Enum):
    PAYMENT_FAILED = models.CaseKind.payment_failed.value
    CANCELLATION_SCHEDULED = models.CaseKind.cancellation_scheduled.value
    CANCELED = models.CaseKind.canceled.value
    DOWNGRADED = models.CaseKind.downgraded.value
    USAGE_DROP = models.CaseKind.usage_drop.value
    HIGH_RISK = models.CaseKind.high_risk.value


@strawberry.enum(name="CaseStatus", description="OPEN until billing truth or a person decides how it ended.")
class CaseStatus(Enum):
    OPEN = models.CaseStatus.open.value
    RECOVERED = models.CaseStatus.recovered.value
    LOST = models.CaseStatus.lost.value
    DISMISSED = models.CaseStatus.dismissed.value


@strawberry.enum(name="CaseEventType", description="What a timeline entry records.")
class CaseEventType(Enum):
    OPENED = models.CaseEventType.opened.value
    JOINED = models.CaseEventType.joined.value
    TOUCHED = models.CaseEventType.touched.value
    OFFER_SHOWN = models.CaseEventType.offer_shown.value
    OFFER_ACCEPTED = models.CaseEventType.offer_accepted.value
    OFFER_FAILED = models.CaseEventType.offer_failed.value
    NOTE = models.CaseEventType.note.value
    ASSIGNED = models.CaseEventType.assigned.value
    STATUS_CHANGED = models.CaseEventType.status_changed.value
    VERIFIED = models.CaseEventType.verified.value


@strawberry.type(description="An amount in integer minor units of an ISO 4217 currency.")
class Money:
    amount: int
    currency: str | None


@strawberry.type(name="CaseTrigger", description="The event that opened the case.")
class CaseTriggerType:
    type: str = strawberry.field(description="payment_failed, cancel_scheduled, tier_changed, usage_drop, …")
    occurred_at: datetime = strawberry.field(description="When it happened at the source.")


@strawberry.type(name="CaseEvent", description="An entry of a case's timeline.")
class CaseEventObject:
    case_id: strawberry.Private[uuid.UUID]
    id: strawberry.ID = strawberry.field(description="Opaque.")
    type: CaseEventType
    kind: CaseKind = strawberry.field(description="The case's kind.")
    occurred_at: datetime
    actor: str = strawberry.field(
        description="Who or what caused it: event:<source>:<id>, job:<name>, api_key:<id>, member:<id>."
    )
    data: JSON = strawberry.field(description="What changed: from/to status, reason, note text, …")

    @classmethod
    def from_row(cls, row: CaseEventRow, kind: str) -> "CaseEventObject":
        return cls(
            case_id=row.case_id,
            id=event_global_id(row.id),
            type=CaseEventType(row.type),
            kind=CaseKind(kind),
            occurred_at=row.occurred_at,
            actor=row.actor,
            data=JSON(row.data),
        )

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "CaseEventObject":
        """From what the cases domain publishes for each case event (backend/cases/publishing.py)."""
        return cls(
            case_id=uuid.UUID(message["case_id"]),
            id=event_global_id(uuid.UUID(message["id"])),
            type=CaseEventType(message["type"]),
            kind=CaseKind(message["kind"]),
            occurred_at=datetime.fromisoformat(message["occurred_at"]),
            actor=message["actor"],
            data=JSON(message["data"]),
        )

    @strawberry.field(name="case", description="The case; null once it is gone (a trigger found stale).")
    async def case_(self, info: strawberry.Info) -> Annotated["CaseType", strawberry.lazy(__name__)] | None:
        row = await info.context.loaders.case.load(self.case_id)
        return CaseType.from_row(row) if row is not None else None


def event_global_id(event_id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(to_base64("CaseEvent", event_id))


CaseEventConnection = Connection[CaseEventObject]


@strawberry.type(name="Case")
class CaseType(RowNode):
    """A recovery case. Data fields are copied from the row; relations go through dataloaders."""

    row: strawberry.Private[RecoveryCase]
    loader = "case"
    kind: CaseKind
    status: CaseStatus
    priority: float = strawberry.field(description="The expected loss: churn probability x revenue at risk.")
    revenue_at_risk: Money = strawberry.field(description="The MRR, or for a failed payment the amount due.")
    opened_at: datetime = strawberry.field(description="The trigger's event time, not when it arrived.")
    first_touch_due_at: datetime = strawberry.field(description="The first-touch deadline (the kind's SLA).")
    first_touch_at: datetime | None
    overdue: bool = strawberry.field(description="Open, never touched, and past its first-touch deadline.")
    resolved_at: datetime | None
    verified_at: datetime | None = strawberry.field(
        description="When the recovery held for the verification period; only verified recoveries count."
    )
    resolution_reason: str | None
    assignee: str | None
    trigger: CaseTriggerType
    details: JSON = strawberry.field(
        description="What the trigger said: decline class, amount, attempts, next retry, access end, MRR before/after."
    )

    @classmethod
    def from_row(cls, row: RecoveryCase) -> "CaseType":
        return cls(
            row=row,
            id=cls.global_id(row),
            kind=CaseKind(row.kind),
            status=CaseStatus(row.status),
            priority=row.priority,
            revenue_at_risk=Money(amount=row.revenue_at_risk, currency=row.currency),
            opened_at=row.opened_at,
            first_touch_due_at=row.first_touch_due_at,
            first_touch_at=row.first_touch_at,
            overdue=is_overdue(row),
            resolved_at=row.resolved_at,
            verified_at=row.verified_at,
            resolution_reason=row.resolution_reason,
            assignee=row.assignee,
            trigger=CaseTriggerType(type=row.trigger_type, occurred_at=row.trigger_occurred_at),
            details=JSON(row.details),
        )

    @strawberry.field(description="The customer the case is about.")
    async def customer(self, info: strawberry.Info) -> CustomerType:
        row = await info.context.loaders.customer.load(self.row.customer_id)
        return CustomerType.from_row(row)

    @strawberry.field(description="The case's timeline, oldest first; `first` is at most 100.")
    async def events(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> CaseEventConnection:
        page = await info.context.loaders.case_events.load(CasePage(self.row.id, first, after))
        return connection_from_page(page, lambda row: CaseEventObject.from_row(row, self.row.kind))

    @strawberry.field(
        description="The messages sent (or suppressed) for the case, newest first; `first` is at most 100."
    )
    async def messages(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> MessageConnection:
        page = await info.context.loaders.case_messages.load(CasePage(self.row.id, first, after))
        return connection_from_page(page, MessageType.from_row)

    @strawberry.field(
        description="What the customer would be offered now, best first, each with the reason (empty once closed)."
    )
    async def offers(
        self, info: strawberry.Info
    ) -> list[Annotated["OfferChoiceType", strawberry.lazy("churnsaver.graphql.offers.types")]]:
        from churnsaver.graphql.offers.types import OfferChoiceType

        return [OfferChoiceType.from_choice(choice) for choice in await info.context.loaders.case_offers.load(self.row)]

    @strawberry.field(description="The offers accepted for the case and what billing made of them, oldest first.")
    async def redemptions(
        self, info: strawberry.Info
    ) -> list[Annotated["RedemptionType", strawberry.lazy("churnsaver.graphql.offers.types")]]:
        from churnsaver.graphql.offers.types import RedemptionType

        return [RedemptionType.from_row(row) for row in await info.context.loaders.case_redemptions.load(self.row.id)]


CaseConnection = Connection[CaseType]


@strawberry.type(name="CaseKindDays")
class CaseKindDays:
    kind: CaseKind
    days: int


@strawberry.type(name="CaseKindMinutes")
class CaseKindMinutes:
    kind: CaseKind
    minutes: int


@strawberry.type(name="CaseSettings", description="How cases open, how long they stay open, and when they are due.")
class CaseSettingsType:
    window_days: list[CaseKindDays] = strawberry.field(
        description="The attribution window per kind: recovered by then, or lost."
    )
    sla_minutes: list[CaseKindMinutes] = strawberry.field(description="The first-touch deadline per kind.")
    usage_drop_ratio: float = strawberry.field(
        description="USAGE_DROP opens when the last 7 days fall below this share of the previous 28 days' rate."
    )
    usage_drop_min_active_days: int = strawberry.field(
        description="…for a customer active at least this many days of those 28."
    )
    case_tiers: list[RiskTier] = strawberry.field(description="Entering one of these risk tiers opens HIGH_RISK.")
    verify_days: int = strawberry.field(description="How long a recovery must hold before it is verified.")

    @classmethod
    def from_settings(cls, settings: CaseSettings) -> "CaseSettingsType":
        return cls(
            window_days=[CaseKindDays(kind=CaseKind(kind), days=days) for kind, days in settings.window_days.items()],
            sla_minutes=[
                CaseKindMinutes(kind=CaseKind(kind), minutes=minutes) for kind, minutes in settings.sla_minutes.items()
            ],
            usage_drop_ratio=settings.usage_drop_ratio,
            usage_drop_min_active_days=settings.usage_drop_min_active_days,
            case_tiers=[RiskTier(tier) for tier in settings.case_tiers],
            verify_days=settings.verify_days,
        )
