"""API keys: minted with 256 random bits, shown once, kept as a SHA-256 digest, found by prefix.

A key reads `cs_<prefix>_<secret>`. The prefix is public (it names the key in lists and logs);
the secret never leaves the response that created it. Keys are high-entropy, so a fast digest
compared in constant time is the right tool here, unlike passwords.
"""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.tenants.auth import AuthSubject, Scope, SubjectKind
from churnsaver.tenants.models import ApiKey
from churnsaver.tenants.repository import ApiKeyRepository

KEY_PATTERN = re.compile(r"^cs_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
# Writing last_used_at on every request would make every read a write; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(Exception):
    """Authentication failed; `reason` is safe to return in the 401 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyAuthentication:
    subject: AuthSubject
    last_used_at: datetime | None

    @property
    def use_is_unrecorded(self) -> bool:
        return self.last_used_at is None or utcnow() - self.last_used_at > LAST_USED_RESOLUTION


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKey
    plaintext: str


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_scopes(scopes: list[str] | None) -> list[str]:
    """The scopes of a new key: both when none are named; an empty list names none and is refused,
    rather than read as "all"."""
    if scopes is not None and not scopes:
        raise InvalidInput("a key needs at least one scope: 'read' and/or 'write'")
    chosen = [Scope.read, Scope.write] if scopes is None else scopes
    try:
        return sorted({Scope(scope).value for scope in chosen})
    except ValueError:
        raise InvalidInput(f"unknown scope in {chosen!r}; use 'read' and/or 'write'") from None


async def create_api_key(
    session: AsyncSession, subject: AuthSubject, *, name: str, scopes: list[str] | None = None
) -> NewApiKey:
    subject.require_write()
    tenant_id = subject.tenant_id
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an API key needs a name of 1 to 200 characters")
    prefix = secrets.token_hex(6)
    plaintext = f"cs_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        tenant_id=tenant_id, name=name, prefix=prefix, secret_hash=_digest(plaintext), scopes=parse_scopes(scopes)
    )
    await ApiKeyRepository(session, tenant_id).add(record)
    return NewApiKey(record=record, plaintext=plaintext)


async def revoke_api_key(session: AsyncSession, subject: AuthSubject, key_id: uuid.UUID) -> ApiKey:
    subject.require_write()
    record = await ApiKeyRepository(session, subject.tenant_id).get_or_raise(key_id, what="API key")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


async def authenticate_api_key(system_session: AsyncSession, plaintext: str) -> KeyAuthentication:
    """Resolve a presented key to its subject, or raise InvalidApiKey saying why."""
    match = KEY_PATTERN.match(plaintext)
    if match is None:
        raise InvalidApiKey("malformed API key")
    # The only read of api_keys without a tenant: on PostgreSQL a policy grants it to the
    # system (owner) connection alone, for SELECT alone.
    row = (
        await system_session.execute(
            select(
                ApiKey.id, ApiKey.tenant_id, ApiKey.secret_hash, ApiKey.scopes, ApiKey.revoked_at, ApiKey.last_used_at
            ).where(ApiKey.prefix == match["prefix"])
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(plaintext)):
        raise InvalidApiKey("unknown API key")
    if row.revoked_at is not None:
        raise InvalidApiKey("revoked API key")
    subject = AuthSubject(
        tenant_id=row.tenant_id,
        kind=SubjectKind.api_key,
        subject_id=row.id,
        scopes=frozenset(Scope(scope) for scope in row.scopes),
    )
    return KeyAuthentication(subject=subject, last_used_at=row.last_used_at)


async def record_key_use(session: AsyncSession, subject: AuthSubject) -> None:
    """Stamp last_used_at; `session` is the subject's own tenant session."""
    stamp = ApiKeyRepository(session, subject.tenant_id).update_owned().where(ApiKey.id == subject.subject_id)
    await session.execute(stamp.values(last_used_at=utcnow()))


async def list_api_keys(session: AsyncSession, subject: AuthSubject) -> list[ApiKey]:
    subject.require_read()
    statement = ApiKeyRepository(session, subject.tenant_id).select_readable().order_by(ApiKey.created_at, ApiKey.id)
    return list((await session.execute(statement)).scalars())


def key_prefix(plaintext: str) -> str | None:
    """The public prefix a presented key names, if it is shaped like a key."""
    match = KEY_PATTERN.match(plaintext)
    return match["prefix"] if match else None


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("the Authorization header must be 'Bearer <api key>'")
    return token.strip()
