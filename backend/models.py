"""Every mapped model, imported in one place so Alembic and the tests see the whole schema."""

from churnsaver.backend.customers.models import Customer, CustomerEvent, CustomerIdentity, Subscription
from churnsaver.backend.db import Base
from churnsaver.backend.ingest.models import InboxEvent, IngestDailyStat, WebhookEndpoint
from churnsaver.jobs.models import FailedJob, OutboxJob, ScheduleSlot
from churnsaver.tenants.models import ApiKey, Tenant

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "Customer",
    "CustomerEvent",
    "CustomerIdentity",
    "FailedJob",
    "InboxEvent",
    "IngestDailyStat",
    "OutboxJob",
    "ScheduleSlot",
    "Subscription",
    "Tenant",
    "WebhookEndpoint",
    "metadata",
]
