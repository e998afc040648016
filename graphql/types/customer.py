"""The Customer type and its connection."""

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.customers.models import Customer as CustomerRow
from churnsaver.graphql.pagination import Connection
from churnsaver.graphql.types.node import RowNode


@strawberry.type(name="Customer")
class CustomerType(RowNode):
    """Plain data fields, copied from the row: a page of 100 customers resolves 500 of them, and a
    data field skips the resolver machinery (Info, arguments, extensions) a method field pays."""

    row: strawberry.Private[CustomerRow]
    loader = "customer"
    external_id: str = strawberry.field(description="The tenant's own id for this customer.")
    email: str | None
    name: str | None
    traits: JSON
    created_at: datetime

    @classmethod
    def from_row(cls, row: CustomerRow) -> "CustomerType":
        return cls(
            row=row,
            id=cls.global_id(row),
            external_id=row.external_id,
            email=row.email,
            name=row.name,
            traits=row.traits,
            created_at=row.created_at,
        )


CustomerConnection = Connection[CustomerType]
