"""Every mapped model, imported in one place so Alembic and the tests see the whole schema."""

from churnsaver.backend.customers.models import Customer
from churnsaver.backend.db import Base
from churnsaver.jobs.models import FailedJob, OutboxJob, ScheduleSlot
from churnsaver.tenants.models import ApiKey, Tenant

metadata = Base.metadata

__all__ = ["ApiKey", "Customer", "FailedJob", "OutboxJob", "ScheduleSlot", "Tenant", "metadata"]
