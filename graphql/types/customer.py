"""The Customer type and its connection."""

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from churnsaver.backend.customers.models import Customer as CustomerRow
from churnsaver.graphql.types.node import RowNode


@strawberry.type(name="Customer")
class CustomerType(RowNode):
    row: strawberry.Private[CustomerRow]
    loader = "customer"

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
