"""The root schema, assembled from per-domain query and mutation types."""

import strawberry
from strawberry.tools import merge_types

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.errors import NotFound
from churnsaver.graphql.customers import CustomerQueries
from churnsaver.graphql.extensions import build_extensions
from churnsaver.graphql.ingest_stats import IngestStatsQueries
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.risk import RiskMutations, RiskQueries
from churnsaver.graphql.risk_models import RiskModelMutations, RiskModelQueries
from churnsaver.graphql.tenants import TenantMutations, TenantQueries
from churnsaver.graphql.types.api_key import ApiKeyType
from churnsaver.graphql.types.customer import CustomerType
from churnsaver.graphql.types.node import Node, RowNode, parse_global_id
from churnsaver.graphql.types.tenant import TenantType
from churnsaver.graphql.types.webhook_endpoint import WebhookEndpointType
from churnsaver.graphql.webhooks import WebhookMutations, WebhookQueries

NODE_TYPES: dict[str, type[RowNode]] = {
    node_type.__strawberry_definition__.name: node_type
    for node_type in (TenantType, CustomerType, ApiKeyType, WebhookEndpointType)
}


@strawberry.type
class NodeQueries:
    @strawberry.field(permission_classes=[CanRead], description="Any object by its global id.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node:
        type_name, node_uuid = parse_global_id(id)
        node_type = NODE_TYPES.get(type_name)
        if node_type is None:
            raise NotFound("node")
        [found] = await node_type.resolve_nodes(info, [node_uuid])
        if found is None:
            raise NotFound("node")
        return found


Query = merge_types(
    "Query",
    (NodeQueries, TenantQueries, CustomerQueries, IngestStatsQueries, WebhookQueries, RiskQueries, RiskModelQueries),
)
Mutation = merge_types("Mutation", (TenantMutations, WebhookMutations, RiskMutations, RiskModelMutations))


def create_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=list(NODE_TYPES.values()),
        extensions=build_extensions(settings),
    )
