"""The Tenant type."""

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry import relay

from churnsaver.graphql.types.node import load_nodes
from churnsaver.tenants.models import Tenant as TenantRow


@strawberry.type(name="Tenant")
class TenantType(relay.Node):
    row: strawberry.Private[TenantRow]

    @classmethod
    def resolve_id(cls, root: "TenantType", *, info: strawberry.Info) -> str:
        return str(root.row.id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        rows = await load_nodes(info.context.loaders.tenant, node_ids)
        return [cls(row=row) if row else None for row in rows]

    @strawberry.field
    def slug(self) -> str:
        return self.row.slug

    @strawberry.field
    def name(self) -> str:
        return self.row.name
