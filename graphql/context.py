"""The typed GraphQL context: who is asking, for which tenant, and the operation's unit of work."""

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pubsub import IN_PROCESS, Broker
from churnsaver.graphql.dataloaders import Loaders
from churnsaver.graphql.errors import Unauthenticated
from churnsaver.tenants.auth import AuthSubject

# Set by the UnitOfWork extension for the length of one operation. A context variable rather
# than a context attribute, because one WebSocket context serves concurrent operations.
operation_session: ContextVar[AsyncSession] = ContextVar("operation_session")
# Sibling root fields resolve concurrently, and a session runs one statement at a time: they take
# turns on it, each holding the lock for its whole resolver.
operation_session_turn: ContextVar[asyncio.Lock] = ContextVar("operation_session_turn")


@dataclass
class Context:
    db: Database
    settings: Settings
    subject: AuthSubject | None
    request: Any = None
    response: Any = None
    connection_params: dict[str, object] | None = None
    broker: Broker = IN_PROCESS  # where subscriptions listen (core/pubsub.py)
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def session(self) -> AsyncSession:
        return operation_session.get()

    @property
    def auth(self) -> AuthSubject:
        """The subject; resolvers behind a permission class can rely on it being there."""
        if self.subject is None:
            raise Unauthenticated("authentication required")
        return self.subject

    def forget_loaded(self) -> None:
        """Drop what the loaders cached: a subscription reads afresh for each event it delivers."""
        self._loaders = None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.db, self.auth.tenant_id)
        return self._loaders
