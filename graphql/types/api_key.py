"""The ApiKey type. The secret is never part of it: it is returned once, by createApiKey."""

from datetime import datetime

import strawberry

from churnsaver.graphql.types.node import RowNode
from churnsaver.tenants.models import ApiKey as ApiKeyRow


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
