"""Tenant types: the tenant, its API keys, and the viewer (the caller and its tenant).

An ApiKey's secret is never part of it: it is returned once, by createApiKey.
"""

from datetime import datetime

import strawberry

from churnsaver.backend.core.errors import NotFound
from churnsaver.graphql.node import RowNode
from churnsaver.tenants.models import ApiKey as ApiKeyRow
from churnsaver.tenants.models import Tenant as TenantRow


@strawberry.type(name="Tenant")
class TenantType(RowNode):
    row: strawberry.Private[TenantRow]
    loader = "tenant"

    @strawberry.field
    def slug(self) -> str:
        return self.row.slug

    @strawberry.field
    def name(self) -> str:
        return self.row.name


@strawberry.type(name="ApiKey")
class ApiKeyType(RowNode):
    row: strawberry.Private[ApiKeyRow]
    loader = "api_key"

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="The key's public prefix, to recognise it in lists and logs.")
    def prefix(self) -> str:
        return self.row.prefix

    @strawberry.field
    def scopes(self) -> list[str]:
        return self.row.scopes

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def last_used_at(self) -> datetime | None:
        return self.row.last_used_at

    @strawberry.field
    def revoked_at(self) -> datetime | None:
        return self.row.revoked_at


@strawberry.type
class Viewer:
    @strawberry.field
    async def tenant(self, info: strawberry.Info) -> TenantType:
        row = await info.context.loaders.tenant.load(info.context.auth.tenant_id)
        if row is None:
            raise NotFound("tenant")
        return TenantType.from_row(row)

    @strawberry.field(description="How the caller is authenticated: 'api_key' or 'member'.")
    def kind(self, info: strawberry.Info) -> str:
        return info.context.auth.kind.value

    @strawberry.field
    def scopes(self, info: strawberry.Info) -> list[str]:
        return sorted(info.context.auth.scopes)
