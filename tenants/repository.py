"""Tenant-scoped reads and writes of API keys."""

from churnsaver.backend.core.repository import TenantRepository
from churnsaver.tenants.models import ApiKey


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
