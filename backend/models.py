"""Every mapped model, imported in one place so Alembic and the tests see the whole schema."""

from churnsaver.backend.billing.models import BillingCall, BillingConnection
from churnsaver.backend.campaigns.models import (
    Campaign,
    CampaignConsumerCursor,
    CampaignEnrollment,
    CampaignStepDue,
)
from churnsaver.backend.cases.models import CaseConsumerCursor, CaseEvent, CaseSettingsRow, RecoveryCase
from churnsaver.backend.channels.models import (
    ChannelOptOut,
    ChannelSettingsRow,
    LinkClick,
    Message,
    MessageEvent,
    MessageTemplate,
    SmsConsent,
    SuppressedAddress,
)
from churnsaver.backend.core.db import Base
from churnsaver.backend.core.domain_events import DomainEvent
from churnsaver.backend.customers.models import (
    Customer,
    CustomerDailyActivity,
    CustomerDailyState,
    CustomerEvent,
    CustomerIdentity,
    Subscription,
)
from churnsaver.backend.embeds.models import EmbedOrigin, EmbedSettingsRow
from churnsaver.backend.ingest.models import InboxEvent, IngestDailyStat, WebhookEndpoint
from churnsaver.backend.offers.models import BudgetMonth, Offer, OfferArm, OfferSettingsRow, Redemption
from churnsaver.backend.risk.models import (
    RiskModel,
    RiskScore,
    RiskScoreHistory,
    RiskSettings,
)
from churnsaver.jobs.models import FailedJob, OutboxJob, ScheduleSlot
from churnsaver.tenants.models import ApiKey, Tenant

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "BillingCall",
    "BillingConnection",
    "BudgetMonth",
    "Campaign",
    "CampaignConsumerCursor",
    "CampaignEnrollment",
    "CampaignStepDue",
    "CaseConsumerCursor",
    "CaseEvent",
    "CaseSettingsRow",
    "ChannelOptOut",
    "ChannelSettingsRow",
    "Customer",
    "CustomerDailyActivity",
    "CustomerDailyState",
    "CustomerEvent",
    "CustomerIdentity",
    "DomainEvent",
    "EmbedOrigin",
    "EmbedSettingsRow",
    "FailedJob",
    "InboxEvent",
    "IngestDailyStat",
    "LinkClick",
    "Message",
    "MessageEvent",
    "MessageTemplate",
    "Offer",
    "OfferArm",
    "OfferSettingsRow",
    "OutboxJob",
    "RecoveryCase",
    "Redemption",
    "RiskModel",
    "RiskScore",
    "RiskScoreHistory",
    "RiskSettings",
    "ScheduleSlot",
    "SmsConsent",
    "Subscription",
    "SuppressedAddress",
    "Tenant",
    "WebhookEndpoint",
    "metadata",
]
