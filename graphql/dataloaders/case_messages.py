"""A page of each case's messages, newest first."""

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.repository import MessageRepository
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE, Page
from churnsaver.graphql.dataloaders.base import TenantScopedLoader
from churnsaver.graphql.dataloaders.case_events import CasePage


class CaseMessagesLoader(TenantScopedLoader[CasePage, Page[Message]]):
    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        super().__init__(db, tenant_id, max_batch_size=MAX_PAGE_SIZE)

    async def load_batch(self, keys: Sequence[CasePage]) -> list[Page[Message] | InvalidInput]:
        by_arguments: defaultdict[tuple[int | None, str | None], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            by_arguments[key.first, key.after].append(key.case_id)
        found: dict[tuple[uuid.UUID, int | None, str | None], Page[Message] | InvalidInput] = {}
        async with self.read_session() as session:
            for (first, after), case_ids in by_arguments.items():
                pages: Mapping[uuid.UUID, Page[Message] | InvalidInput]
                try:
                    pages = await MessageRepository(session, self.tenant_id).pages_of_cases(
                        case_ids, first=first, after=after
                    )
                except InvalidInput as error:
                    # A bad cursor or page size fails the fields that passed it, not the whole batch.
                    pages = dict.fromkeys(case_ids, error)
                for case_id, page in pages.items():
                    found[case_id, first, after] = page
        return [found[key.case_id, key.first, key.after] for key in keys]
