"""A page of each case's timeline, oldest first; and the loader shape every per-case page shares."""

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import CaseEvent
from churnsaver.backend.cases.repository import CaseEventRepository
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE, Page
from churnsaver.graphql.dataloaders.base import TenantScopedLoader

RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class CasePage:
    """Which page of which case's rows."""

    case_id: uuid.UUID
    first: int | None
    after: str | None


class CasePagesLoader(TenantScopedLoader[CasePage, Page[RowT]]):
    """A page of each case's rows of one kind (`pages_of_cases`): the keys asking for the same page
    arguments are read together, in one statement."""

    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        super().__init__(db, tenant_id, max_batch_size=MAX_PAGE_SIZE)

    async def pages_of_cases(
        self, session: AsyncSession, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
    ) -> Mapping[uuid.UUID, Page[RowT]]:
        raise NotImplementedError

    async def load_batch(self, keys: Sequence[CasePage]) -> list[Page[RowT] | InvalidInput]:
        by_arguments: defaultdict[tuple[int | None, str | None], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            by_arguments[key.first, key.after].append(key.case_id)
        found: dict[tuple[uuid.UUID, int | None, str | None], Page[RowT] | InvalidInput] = {}
        async with self.read_session() as session:
            for (first, after), case_ids in by_arguments.items():
                pages: Mapping[uuid.UUID, Page[RowT] | InvalidInput]
                try:
                    pages = await self.pages_of_cases(session, case_ids, first=first, after=after)
                except InvalidInput as error:
                    # A bad cursor or page size fails the fields that passed it, not the whole batch.
                    pages = dict.fromkeys(case_ids, error)
                for case_id, page in pages.items():
                    found[case_id, first, after] = page
        return [found[key.case_id, key.first, key.after] for key in keys]


class CaseEventsLoader(CasePagesLoader[CaseEvent]):
    async def pages_of_cases(
        self, session: AsyncSession, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
    ) -> Mapping[uuid.UUID, Page[CaseEvent]]:
        return await CaseEventRepository(session, self.tenant_id).pages_of_cases(case_ids, first=first, after=after)
