"""The ApiKey type. The secret is never part of it: it is returned once, by createApiKey."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from churnsaver.graphql.types.node import load_nodes
from churnsaver.tenants.models import ApiKey as ApiKeyRow


@strawberry.type(name="ApiKey")
class ApiKeyType(relay.Node):
    row: strawberry.Private[ApiKeyRow]

    @classmethod
    def resolve_id(cls, root: "ApiKeyType", *, info: strawberry.Info) -> str:
        return str(root.row.id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        rows = await load_nodes(info.context.loaders.api_key, node_ids)
        return [cls(row=row) if row else None for row in rows]

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
