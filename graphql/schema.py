"""The root schema, assembled from per-domain query and mutation types."""

from datetime import datetime

import strawberry
from graphql.error import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, get_object_definition

from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.errors import NotFound
from churnsaver.graphql.accepted_input import DATETIME
from churnsaver.graphql.campaigns.mutations import CampaignMutations
from churnsaver.graphql.campaigns.queries import CampaignQueries
from churnsaver.graphql.campaigns.types import CampaignType
from churnsaver.graphql.cases.mutations import CaseMutations
from churnsaver.graphql.cases.queries import CaseQueries
from churnsaver.graphql.cases.subscriptions import CaseSubscriptions
from churnsaver.graphql.cases.types import CaseType
from churnsaver.graphql.channels.mutations import ChannelMutations
from churnsaver.graphql.channels.queries import ChannelQueries
from churnsaver.graphql.channels.types import MessageType
from churnsaver.graphql.customers.queries import CustomerQueries
from churnsaver.graphql.customers.types import CustomerType
from churnsaver.graphql.embeds.mutations import EmbedMutations
from churnsaver.graphql.embeds.queries import EmbedQueries
from churnsaver.graphql.errors import hide_suggestions, report_errors
from churnsaver.graphql.extensions import OneSessionAtATime, build_extensions
from churnsaver.graphql.ingest.mutations import IngestMutations
from churnsaver.graphql.ingest.queries import IngestQueries
from churnsaver.graphql.ingest.types import WebhookEndpointType
from churnsaver.graphql.node import Node, RowNode, parse_global_id
from churnsaver.graphql.offers.mutations import OfferMutations
from churnsaver.graphql.offers.queries import OfferQueries
from churnsaver.graphql.offers.types import OfferType, RedemptionType
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.risk.mutations import RiskMutations
from churnsaver.graphql.risk.queries import RiskQueries
from churnsaver.graphql.tenants.mutations import TenantMutations
from churnsaver.graphql.tenants.queries import TenantQueries
from churnsaver.graphql.tenants.types import ApiKeyType, TenantType

NODE_TYPES: dict[str, type[RowNode]] = {
    get_object_definition(node_type, strict=True).name: node_type
    for node_type in (
        TenantType,
        CustomerType,
        ApiKeyType,
        WebhookEndpointType,
        CaseType,
        MessageType,
        CampaignType,
        OfferType,
        RedemptionType,
    )
}


@strawberry.type
class NodeQueries:
    @strawberry.field(permission_classes=[CanRead], description="Any object by its global id.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
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
    (
        NodeQueries,
        TenantQueries,
        CustomerQueries,
        IngestQueries,
        RiskQueries,
        CaseQueries,
        ChannelQueries,
        CampaignQueries,
        OfferQueries,
        EmbedQueries,
    ),
)
for root_field in get_object_definition(Query, strict=True).fields:
    root_field.extensions.append(OneSessionAtATime())
Mutation = merge_types(
    "Mutation",
    (
        TenantMutations,
        IngestMutations,
        RiskMutations,
        CaseMutations,
        ChannelMutations,
        CampaignMutations,
        OfferMutations,
        EmbedMutations,
    ),
)
Subscription = merge_types("Subscription", (CaseSubscriptions,))


class Schema(strawberry.Schema):
    """Strawberry's schema, with errors coded and logged our way instead of all logged as errors."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        if self.config.disable_field_suggestions:
            # Strawberry's own removal covers unknown fields only; arguments, types and enum values too.
            for error in errors:
                hide_suggestions(error)
        report_errors(errors)


def create_schema(settings: Settings) -> Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(NODE_TYPES.values()),
        extensions=build_extensions(settings),
        config=StrawberryConfig(disable_field_suggestions=settings.env is Environment.production),
        scalar_overrides={datetime: DATETIME},
    )
