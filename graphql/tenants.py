"""Viewer, tenant and API key fields."""

from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError, NotFound
from churnsaver.graphql.permissions import CanRead, CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.types.api_key import ApiKeyType
from churnsaver.graphql.types.node import parse_node_uuid
from churnsaver.graphql.types.tenant import TenantType
from churnsaver.tenants import api_keys


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


@strawberry.type
class TenantQueries:
    @strawberry.field(permission_classes=[CanRead], description="The caller and its tenant.")
    def viewer(self) -> Viewer:
        return Viewer()

    @strawberry.field(permission_classes=[CanRead])
    async def api_keys(self, info: strawberry.Info) -> list[ApiKeyType]:
        context = info.context
        rows = await api_keys.list_api_keys(context.session, context.auth.tenant_id)
        return [ApiKeyType.from_row(row) for row in rows]


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
            created = await api_keys.create_api_key(
                context.session, context.auth.tenant_id, name=input.name, scopes=input.scopes
            )
        except DomainError as error:
            return UserError.from_error(error)
        return ApiKeyCreated(api_key=ApiKeyType.from_row(created.record), secret=created.plaintext)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def revoke_api_key(self, info: strawberry.Info, id: strawberry.ID) -> RevokeApiKeyResult:
        context = info.context
        try:
            key_id = parse_node_uuid(id, "ApiKey")
            row = await api_keys.revoke_api_key(context.session, context.auth.tenant_id, key_id)
        except DomainError as error:
            return UserError.from_error(error)
        return ApiKeyRevoked(api_key=ApiKeyType.from_row(row))
