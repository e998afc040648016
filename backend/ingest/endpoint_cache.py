"""The receivers' cache of webhook endpoints: endpoint id -> tenant, source and verifying secrets.

Looking an endpoint up and decrypting its secrets cost more than the rest of a delivery, so a
process keeps what it read for TTL_SECONDS; concurrent misses share one read. The decrypted
secrets live only in this process's memory. A cached entry never outlives a change for long:
- in this process, committing any change to an endpoint (rotate, delete, or any other UPDATE
  or DELETE of webhook_endpoints through a session) drops it at once;
- in other processes, a rotation takes effect at the first delivery signed with the new secret
  (the receiver re-reads an endpoint when no cached secret matches, before answering 401); a
  deletion takes effect within TTL_SECONDS, until which the deleted endpoint still stores what
  its own secret signs. Deleting a tenant (its endpoints go with it) is the same, except that
  its deliveries are answered 503 meanwhile: the inbox refuses rows of a tenant that is gone.
The previous secret's expiry is kept with the entry and checked at every delivery.
"""

import asyncio
import time
import uuid
import weakref
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import WebhookEndpoint
from churnsaver.backend.ingest.repository import find_receiving_endpoint
from churnsaver.backend.ingest.webhook_secrets import secret_box

TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000
_CHANGED = "webhook_endpoints_changed"  # session.info: ids changed in this transaction (None: any)


@dataclass(frozen=True, slots=True)
class ReceivingEndpoint:
    """What a receiver needs of a live endpoint; `cached` says it was not read for this delivery."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_id_text: str  # in every delivery's log context; str(UUID) runs Python code each time
    source: Source
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    read_at: float  # time.monotonic()
    cached: bool = False

    def verifying_secrets(self) -> list[str]:
        """The current secret, and the previous one until its grace period ends."""
        expires_at = self.previous_secret_expires_at
        if self.previous_secret is None or expires_at is None or expires_at <= utcnow():
            return [self.secret]
        return [self.secret, self.previous_secret]


def _receiving(row: WebhookEndpoint, secret_key: str) -> ReceivingEndpoint:
    box = secret_box(secret_key)
    bound_to = str(row.id)
    previous = None
    if row.previous_secret_ciphertext is not None and row.previous_secret_expires_at is not None:
        previous = box.decrypt(row.previous_secret_ciphertext, bound_to=bound_to)
    return ReceivingEndpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        tenant_id_text=str(row.tenant_id),
        source=Source(row.source),
        secret=box.decrypt(row.secret_ciphertext, bound_to=bound_to),
        previous_secret=previous,
        previous_secret_expires_at=row.previous_secret_expires_at,
        read_at=time.monotonic(),
    )


class EndpointCache:
    """The live endpoints of one `Database`, read through on a miss."""

    def __init__(self, db: Database, *, ttl_seconds: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[uuid.UUID, ReceivingEndpoint] = {}
        self._reading: dict[tuple[uuid.UUID, Source], asyncio.Future[ReceivingEndpoint | None]] = {}
        # Bumped by every invalidation: a read that started before one is not cached.
        self._generation = 0
        _caches.add(self)

    async def get(self, endpoint_id: uuid.UUID, source: Source, *, fresh: bool = False) -> ReceivingEndpoint | None:
        """The live endpoint `endpoint_id` of `source`, from the cache unless `fresh`; None if unknown.

        Concurrent misses for one endpoint share one read (a cold cache under load would
        otherwise read it once per delivery in flight)."""
        if fresh:
            return await self._read(endpoint_id, source)
        entry = self._entries.get(endpoint_id)
        if entry is not None and time.monotonic() - entry.read_at < self.ttl_seconds:
            return entry if entry.source is source else None
        key = (endpoint_id, source)
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._read(endpoint_id, source))
            reading.add_done_callback(partial(self._read_done, key))
        return await asyncio.shield(reading)

    def _read_done(self, key: tuple[uuid.UUID, Source], reading: asyncio.Future[ReceivingEndpoint | None]) -> None:
        self._reading.pop(key, None)
        if not reading.cancelled():
            reading.exception()  # retrieved here too: every caller may have gone away

    async def _read(self, endpoint_id: uuid.UUID, source: Source) -> ReceivingEndpoint | None:
        generation = self._generation
        async with self.db.system_session() as session:
            row = await find_receiving_endpoint(session, endpoint_id, source)
        entry = _receiving(row, self.db.settings.resolved_secret_key) if row is not None else None
        if entry is None:
            self._entries.pop(endpoint_id, None)
            return None
        if generation == self._generation:
            self._store(entry)
        return entry

    def _store(self, entry: ReceivingEndpoint) -> None:
        self._entries.pop(entry.id, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the least recently read
        self._entries[entry.id] = replace(entry, cached=True)

    def forget(self, endpoint_ids: set[uuid.UUID] | None) -> None:
        """Drop `endpoint_ids` (None: every entry)."""
        self._generation += 1
        if endpoint_ids is None:
            self._entries.clear()
            return
        for endpoint_id in endpoint_ids:
            self._entries.pop(endpoint_id, None)


_caches: weakref.WeakSet[EndpointCache] = weakref.WeakSet()
_by_database: weakref.WeakKeyDictionary[Database, EndpointCache] = weakref.WeakKeyDictionary()


def endpoint_cache(db: Database) -> EndpointCache:
    cache = _by_database.get(db)
    if cache is None:
        cache = _by_database[db] = EndpointCache(db)
    return cache


# In-process invalidation: a transaction that changed endpoints drops them from every cache
# once it commits (not before: a delivery read in between would cache the old row again).


def _mark_changed(session: Session, endpoint_ids: set[uuid.UUID] | None) -> None:
    marked = session.info.get(_CHANGED, set())
    if marked is None or endpoint_ids is None:
        session.info[_CHANGED] = None
    else:
        session.info[_CHANGED] = marked | endpoint_ids


@event.listens_for(Session, "after_flush")
def _endpoints_flushed(session: Session, _flush_context: UOWTransaction) -> None:
    # After a flush, `dirty` and `deleted` still hold what it wrote.
    changed = {item.id for item in (*session.dirty, *session.deleted) if isinstance(item, WebhookEndpoint)}
    if changed:
        _mark_changed(session, changed)


@event.listens_for(Session, "do_orm_execute")
def _endpoints_updated_in_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(m.class_ is WebhookEndpoint for m in state.all_mappers):
        _mark_changed(state.session, None)


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session: Session) -> None:
    if _CHANGED in session.info:
        changed = session.info.pop(_CHANGED)
        for cache in list(_caches):
            cache.forget(changed)


@event.listens_for(Session, "after_rollback")
def _discard_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
