"""The Customer type and its connection."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from churnsaver.backend.customers.models import Customer as CustomerRow
from churnsaver.graphql.types.node import load_nodes


@strawberry.type(name="Customer")
class CustomerType(relay.Node):
    row: strawberry.Private[CustomerRow]

    @classmethod
    def resolve_id(cls, root: "CustomerType", *, info: strawberry.Info) -> str:
        return str(root.row.id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        rows = await load_nodes(info.context.loaders.customer, node_ids)
        return [cls(row=row) if row else None for row in rows]

    @strawberry.field(description="The tenant's own id for this customer.")
    def external_id(self) -> str:
        return self.row.external_id

    @strawberry.field
    def email(self) -> str | None:
        return self.row.email

    @strawberry.field
    def name(self) -> str | None:
        return self.row.name

    @strawberry.field
    def traits(self) -> JSON:
        return self.row.traits

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class CustomerConnection(relay.Connection[CustomerType]):
    total_count: int
