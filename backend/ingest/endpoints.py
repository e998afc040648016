"""Webhook endpoints: the URLs a tenant gives Whop or Stripe, and the secrets that sign them.

A secret is shown once (when it is created or rotated) and stored only encrypted, bound to its
endpoint's id. After a rotation the previous secret keeps verifying for ROTATION_GRACE, so the
provider can be switched over without losing deliveries. Deleting is soft (the row remains as
the record of what was configured); deliveries to a deleted endpoint are "unknown endpoint".
"""

import base64
import binascii
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.crypto import SecretBox
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.ingest.models import Source, WebhookEndpoint
from churnsaver.backend.integrations.signatures import WHSEC_PREFIX, standard_webhooks_key

WEBHOOK_SOURCES = (Source.whop, Source.stripe)
ROTATION_GRACE = timedelta(hours=24)
GENERATED_SECRET_BYTES = 32
SECRET_LENGTH = (16, 500)


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    """An endpoint and its new secret in plaintext: returned once, never stored that way."""

    endpoint: WebhookEndpoint
    signing_secret: str


class WebhookEndpointRepository(TenantRepository[WebhookEndpoint]):
    """Deleted endpoints are gone for every read: lists, look-ups by id and `node(id:)`."""

    model = WebhookEndpoint

    def select_readable(self) -> Select[tuple[WebhookEndpoint]]:
        return super().select_readable().where(WebhookEndpoint.deleted_at.is_(None))


@lru_cache(maxsize=4)
def secret_box(secret_key: str) -> SecretBox:
    """The box for webhook secrets; cached, since the receivers open one per delivery."""
    return SecretBox(secret_key, "webhook-secret")


def generate_secret() -> str:
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def checked_secret(source: Source, secret: str | None) -> str:
    """The secret to store: the tenant's own (as its provider issued it), or a generated one."""
    if secret is None:
        return generate_secret()
    secret = secret.strip()  # pasted secrets often carry a trailing newline
    low, high = SECRET_LENGTH
    if not low <= len(secret) <= high or not (secret.isascii() and secret.isprintable()) or " " in secret:
        raise InvalidInput(f"a signing secret is {low} to {high} printable ASCII characters, without spaces")
    if source is Source.whop and secret.startswith(WHSEC_PREFIX):
        # Standard Webhooks decodes a whsec_ secret as base64: refuse one that never could verify.
        try:
            standard_webhooks_key(secret)
        except binascii.Error:
            raise InvalidInput("a whsec_ signing secret must be base64 after its prefix") from None
    return secret


def _checked_source(source: Source) -> Source:
    if source not in WEBHOOK_SOURCES:
        raise InvalidInput("webhook endpoints exist for Whop and Stripe")
    return source


def _seal(endpoint_id: uuid.UUID, secret: str, secret_key: str) -> bytes:
    return secret_box(secret_key).encrypt(secret, bound_to=str(endpoint_id))


async def create_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, *, source: Source, signing_secret: str | None, secret_key: str
) -> EndpointWithSecret:
    source = _checked_source(source)
    secret = checked_secret(source, signing_secret)
    endpoint_id = uuid.uuid4()  # known before the insert: the ciphertext is bound to it
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        tenant_id=tenant_id,
        source=source,
        secret_ciphertext=_seal(endpoint_id, secret, secret_key),
    )
    await WebhookEndpointRepository(session, tenant_id).add(endpoint)
    return EndpointWithSecret(endpoint=endpoint, signing_secret=secret)


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    repository = WebhookEndpointRepository(session, tenant_id)
    statement = repository.select_readable().order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return list((await session.execute(statement)).scalars())


async def rotate_secret(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    signing_secret: str | None,
    secret_key: str,
) -> EndpointWithSecret:
    """Replace the secret; the one it replaces keeps verifying for ROTATION_GRACE. A secret still
    in its grace period from an earlier rotation stops verifying now."""
    endpoint = await WebhookEndpointRepository(session, tenant_id).get_or_raise(endpoint_id, what="webhook endpoint")
    secret = checked_secret(Source(endpoint.source), signing_secret)
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_GRACE
    endpoint.secret_ciphertext = _seal(endpoint.id, secret, secret_key)
    await session.flush()
    return EndpointWithSecret(endpoint=endpoint, signing_secret=secret)


async def delete_endpoint(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    endpoint = await WebhookEndpointRepository(session, tenant_id).get_or_raise(endpoint_id, what="webhook endpoint")
    endpoint.deleted_at = utcnow()
    await session.flush()
    return endpoint.id


async def find_receiving_endpoint(
    system_session: AsyncSession, endpoint_id: uuid.UUID, source: Source
) -> WebhookEndpoint | None:
    """The live endpoint `endpoint_id` of `source`, whichever tenant owns it. The one read of
    webhook_endpoints before a tenant is known: on PostgreSQL a SELECT-only policy grants it to
    the system connection."""
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.source == source, WebhookEndpoint.deleted_at.is_(None)
    )
    return (await system_session.execute(statement)).scalar_one_or_none()


def verifying_secrets(endpoint: WebhookEndpoint, secret_key: str, *, now: datetime | None = None) -> list[str]:
    """The secrets a delivery to `endpoint` may be signed with: the current one, and the previous
    one until its grace period ends."""
    box = secret_box(secret_key)
    bound_to = str(endpoint.id)
    accepted = [box.decrypt(endpoint.secret_ciphertext, bound_to=bound_to)]
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext is not None and expires_at is not None and expires_at > (now or utcnow()):
        accepted.append(box.decrypt(endpoint.previous_secret_ciphertext, bound_to=bound_to))
    return accepted
