"""The base of every dataloader: one tenant's data, each batch read in its own short session.

Sibling fields resolve concurrently, and one SQLAlchemy session must never be used by two
coroutines at once, so a batch never borrows the operation's session.
"""

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from churnsaver.backend.core.db import Database

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")


class TenantScopedLoader(DataLoader[KeyT, ValueT]):
    def __init__(self, db: Database, tenant_id: uuid.UUID, *, max_batch_size: int | None = None) -> None:
        super().__init__(self.load_batch, max_batch_size=max_batch_size)
        self.db = db
        self.tenant_id = tenant_id

    def read_session(self) -> AsyncSession:
        return self.db.tenant_session(self.tenant_id)

    async def load_batch(self, keys: Sequence[KeyT]) -> Sequence[ValueT | BaseException]:
        """The value of each key, in the keys' order (an exception fails that key's field only)."""
        raise NotImplementedError
