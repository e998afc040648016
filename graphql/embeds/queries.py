"""Embeds queries: the widget settings and the publishable key."""

import strawberry

from churnsaver.backend.embeds import service
from churnsaver.graphql.embeds.types import WidgetSettingsType
from churnsaver.graphql.permissions import CanRead


@strawberry.type
class EmbedQueries:
    @strawberry.field(
        permission_classes=[CanRead], description="Allowed origins, branding, survey reasons, cancel handling."
    )
    async def widget_settings(self, info: strawberry.Info) -> WidgetSettingsType:
        context = info.context
        return WidgetSettingsType.from_settings(await service.get_widget_settings(context.session, context.auth))

    @strawberry.field(
        permission_classes=[CanRead],
        description="The data-key of the widget's script tag: safe in a browser, it reaches only the widget API.",
    )
    async def publishable_key(self, info: strawberry.Info) -> str:
        context = info.context
        return await service.publishable_key(context.session, context.auth)
