"""Tenant queries: the viewer, and the tenant's API keys."""

import strawberry

from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.tenants.types import ApiKeyType, Viewer
from churnsaver.tenants import api_keys


@strawberry.type
class TenantQueries:
    @strawberry.field(permission_classes=[CanRead], description="The caller and its tenant.")
    def viewer(self) -> Viewer:
        return Viewer()

    @strawberry.field(permission_classes=[CanRead])
    async def api_keys(self, info: strawberry.Info) -> list[ApiKeyType]:
        context = info.context
        rows = await api_keys.list_api_keys(context.session, context.auth)
        return [ApiKeyType.from_row(row) for row in rows]
