"""Tenant mutations: create and revoke API keys."""

from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.tenants.types import ApiKeyType
from churnsaver.tenants import api_keys


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] | None = strawberry.field(default=None, description="'read' and/or 'write'; both when omitted.")


@strawberry.type
class ApiKeyCreated:
    api_key: ApiKeyType
    secret: str = strawberry.field(description="The whole key. Shown this once; only a digest is kept.")


@strawberry.type
class ApiKeyRevoked:
    api_key: ApiKeyType


CreateApiKeyResult = Annotated[ApiKeyCreated | UserError, strawberry.union("CreateApiKeyResult")]
RevokeApiKeyResult = Annotated[ApiKeyRevoked | UserError, strawberry.union("RevokeApiKeyResult")]


@strawberry.type
class TenantMutations:
    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_api_key(self, info: strawberry.Info, input: CreateApiKeyInput) -> CreateApiKeyResult:
        context = info.context
        try:
            created = await api_keys.create_api_key(context.session, context.auth, name=input.name, scopes=input.scopes)
        except DomainError as error:
            return UserError.from_error(error)
        return ApiKeyCreated(api_key=ApiKeyType.from_row(created.record), secret=created.plaintext)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def revoke_api_key(self, info: strawberry.Info, id: strawberry.ID) -> RevokeApiKeyResult:
        context = info.context
        try:
            key_id = parse_node_uuid(id, "ApiKey")
            row = await api_keys.revoke_api_key(context.session, context.auth, key_id)
        except DomainError as error:
            return UserError.from_error(error)
        return ApiKeyRevoked(api_key=ApiKeyType.from_row(row))
