"""The base of the loaders that fetch rows by id through their repository; a missing row is None."""

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from churnsaver.backend.core.repository import TenantRepository
from churnsaver.graphql.dataloaders.base import TenantScopedLoader

RowT = TypeVar("RowT")


class RowsById(TenantScopedLoader[uuid.UUID, RowT | None]):
    repository: ClassVar[type[TenantRepository[Any]]]

    async def load_batch(self, ids: Sequence[uuid.UUID]) -> list[RowT | None]:
        async with self.read_session() as session:
            found = await self.repository(session, self.tenant_id).get_many(list(ids))
        return [found.get(record_id) for record_id in ids]
