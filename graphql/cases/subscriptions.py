"""The `caseEvents` subscription: each case event of the caller's tenant, live, filtered by kind.

It listens on the tenant's channel (backend/cases/publishing.py) through the app's broker
(core/pubsub.py): in-process on the embedded default, Redis pub/sub scaled out, so an event a
worker records reaches a client on any web process. The caller's tenant comes from the key its
connection authenticated with; no argument names a tenant.
"""

from collections.abc import AsyncGenerator

import strawberry

from churnsaver.backend.cases.publishing import case_events_channel
from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.core.pubsub import SubscriberDropped
from churnsaver.graphql.cases.types import CaseEventObject, CaseKind
from churnsaver.graphql.permissions import CanRead


class SubscriberTooSlow(DomainError):
    """The client read its events too slowly and was dropped; it subscribes again and reads what
    it missed through `cases` and `Case.events`."""

    code = "SUBSCRIBER_TOO_SLOW"


@strawberry.type
class CaseSubscriptions:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Each case event of your tenant as it is recorded (opened, joined, status changed, note, …), "
        "of the given kinds (all when omitted). A client that falls far behind is dropped with "
        "SUBSCRIBER_TOO_SLOW: subscribe again and read what was missed through `cases`.",
    )
    async def case_events(
        self, info: strawberry.Info, kinds: list[CaseKind] | None = None
    ) -> AsyncGenerator[CaseEventObject]:
        context = info.context
        wanted = {kind.value for kind in kinds} if kinds is not None else None
        async with context.broker.subscribe(case_events_channel(context.auth.tenant_id)) as messages:
            try:
                async for message in messages:
                    if wanted is None or message["kind"] in wanted:
                        # A subscription lives long: each event is read afresh, never from an earlier one's cache.
                        context.forget_loaded()
                        yield CaseEventObject.from_message(message)
            except SubscriberDropped as dropped:
                raise SubscriberTooSlow(str(dropped)) from None
