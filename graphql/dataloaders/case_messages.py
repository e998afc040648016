"""A page of each case's messages, newest first."""

import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.repository import MessageRepository
from churnsaver.backend.core.pagination import Page
from churnsaver.graphql.dataloaders.case_events import CasePagesLoader


class CaseMessagesLoader(CasePagesLoader[Message]):
    async def pages_of_cases(
        self, session: AsyncSession, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
    ) -> Mapping[uuid.UUID, Page[Message]]:
        return await MessageRepository(session, self.tenant_id).pages_of_cases(case_ids, first=first, after=after)
