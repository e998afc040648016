"""Campaign queries: the tenant's campaigns (its default playbooks among them) and one campaign."""

import strawberry

from churnsaver.backend.campaigns import service
from churnsaver.backend.core.errors import NotFound
from churnsaver.graphql.campaigns.types import CampaignConnection, CampaignStatus, CampaignType
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.pagination import connection_from_page, selects_total_count
from churnsaver.graphql.permissions import CanRead


@strawberry.type
class CampaignQueries:
    @strawberry.field(permission_classes=[CanRead], description="Campaigns, oldest first; `first` is at most 100.")
    async def campaigns(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        status: list[CampaignStatus] | None = None,
    ) -> CampaignConnection:
        context = info.context
        page = await service.list_campaigns(
            context.session,
            context.auth,
            statuses=[item.value for item in status] if status is not None else None,
            first=first,
            after=after,
            with_total=selects_total_count(info),
        )
        return connection_from_page(page, CampaignType.from_row)

    @strawberry.field(permission_classes=[CanRead], description="One campaign; null if there is none with that id.")
    async def campaign(self, info: strawberry.Info, id: strawberry.ID) -> CampaignType | None:
        context = info.context
        try:
            row = await service.get_campaign(context.session, context.auth, parse_node_uuid(id, "Campaign"))
        except NotFound:
            return None
        return CampaignType.from_row(row)
