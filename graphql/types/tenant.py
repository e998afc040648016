"""The Tenant type."""

import strawberry

from churnsaver.graphql.types.node import RowNode
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
