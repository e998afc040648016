"""Embedding settings and the verification of a widget's caller.

A tenant's publishable key (`pk_…`) is made the first time it is asked for, and is safe in a
browser: it names the tenant and reaches only the widget API. The widget secret is the
merchant server's: it signs each customer's external id (HMAC-SHA256, hex), so a page can act
for the customer it was rendered for and for no other. The secret is sealed (core/crypto),
returned once when rotated, and never readable after.
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.crypto import SecretBox
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.embeds.models import EmbedSettingsRow
from churnsaver.backend.embeds.repository import EmbedOriginRepository, EmbedSettingsRepository
from churnsaver.backend.embeds.settings import CancelHandling, WidgetSettings
from churnsaver.tenants.auth import AuthSubject

SECRET_PURPOSE = "embeds-widget-secret"
MAX_EXTERNAL_ID = 255


@lru_cache(maxsize=4)
def _box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, SECRET_PURPOSE)


def new_publishable_key() -> str:
    return f"pk_{secrets.token_urlsafe(24)}"


def customer_signature(widget_secret: str, external_id: str) -> str:
    """What the merchant's server puts in `data-signature`: HMAC-SHA256 of the external id, hex."""
    return hmac.new(widget_secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


async def _ensured_row(session: AsyncSession, tenant_id: uuid.UUID) -> EmbedSettingsRow:
    rows = EmbedSettingsRepository(session, tenant_id)
    return await rows.row() or await rows.ensure(new_publishable_key())


async def load_settings(session: AsyncSession, tenant_id: uuid.UUID) -> WidgetSettings:
    row = await EmbedSettingsRepository(session, tenant_id).row()
    origins = await EmbedOriginRepository(session, tenant_id).origins()
    if row is None:
        return WidgetSettings(allowed_origins=tuple(origins))
    return WidgetSettings.from_stored(row.settings, origins=origins, secret_set=row.widget_secret_sealed is not None)


async def get_widget_settings(session: AsyncSession, subject: AuthSubject) -> WidgetSettings:
    subject.require_read()
    return await load_settings(session, subject.tenant_id)


async def publishable_key(session: AsyncSession, subject: AuthSubject) -> str:
    """The tenant's publishable key, made on first request."""
    subject.require_read()
    return (await _ensured_row(session, subject.tenant_id)).publishable_key


async def update_widget_settings(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    brand_name: str | None = None,
    logo_url: str | None = None,
    brand_color: str | None = None,
    survey_reasons: list[tuple[str, str | None]] | None = None,
    cancel_handling: CancelHandling | None = None,
    allowed_origins: list[str] | None = None,
) -> WidgetSettings:
    """The settings with the changes given (None: unchanged), validated and stored."""
    subject.require_write()
    current = await load_settings(session, subject.tenant_id)
    settings = current.updated(
        brand_name=brand_name,
        logo_url=logo_url,
        brand_color=brand_color,
        survey_reasons=survey_reasons,
        cancel_handling=cancel_handling,
        allowed_origins=allowed_origins,
    )
    await _ensured_row(session, subject.tenant_id)
    await EmbedSettingsRepository(session, subject.tenant_id).update(settings=settings.stored())
    if settings.allowed_origins != current.allowed_origins:
        await EmbedOriginRepository(session, subject.tenant_id).replace(settings.allowed_origins)
    return await load_settings(session, subject.tenant_id)


async def rotate_widget_secret(session: AsyncSession, subject: AuthSubject, *, secret_key: str) -> str:
    """A new widget secret, stored sealed and returned this once; the old one stops working now."""
    subject.require_write()
    await _ensured_row(session, subject.tenant_id)
    secret = f"ws_{secrets.token_urlsafe(32)}"
    sealed = _box(secret_key).encrypt(secret, bound_to=str(subject.tenant_id))
    await EmbedSettingsRepository(session, subject.tenant_id).set_secret(sealed, utcnow())
    return secret


async def widget_secret(session: AsyncSession, tenant_id: uuid.UUID, *, secret_key: str) -> str | None:
    """The tenant's widget secret, unsealed: only for the app's own demo page (outside production),
    which signs as a merchant's server would. No API returns it."""
    row = await EmbedSettingsRepository(session, tenant_id).row()
    if row is None or row.widget_secret_sealed is None:
        return None
    return _box(secret_key).decrypt(row.widget_secret_sealed, bound_to=str(tenant_id))


async def allow_demo_origin(session: AsyncSession, tenant_id: uuid.UUID, *, origin: str, secret_key: str) -> None:
    """Let the demo tenant's widget run on `origin` (where `serve` listens), with a widget secret."""
    subject = AuthSubject.system(tenant_id)
    settings = await load_settings(session, tenant_id)
    if origin not in settings.allowed_origins:
        origins = [*settings.allowed_origins, origin]
        await update_widget_settings(session, subject, allowed_origins=origins)
    if not settings.widget_secret_set:
        await rotate_widget_secret(session, subject, secret_key=secret_key)


class CallerRefused(Exception):
    """A widget call that cannot act: the reason is safe to show, the status is the HTTP answer."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class WidgetCaller:
    """A verified widget call: the tenant, its settings, and the customer the page was signed for
    (None when the tenant has no customer with that external id yet)."""

    tenant_id: uuid.UUID
    external_id: str
    customer_id: uuid.UUID | None
    settings: WidgetSettings


async def verify_caller(
    session: AsyncSession,
    row: EmbedSettingsRow,
    *,
    secret_key: str,
    origin: str | None,
    external_id: object,
    signature: object,
) -> WidgetCaller:
    """Check a widget call against the embedding `row` its publishable key found (`session` acts
    for that row's tenant): the page's origin is one the tenant allows, and the signature is the
    tenant's widget secret's over the customer's external id. CallerRefused says why not."""
    tenant_id = row.tenant_id
    if origin is None or not await EmbedOriginRepository(session, tenant_id).allows(origin):
        raise CallerRefused("this site is not allowed to embed the widget", 403)
    if not isinstance(external_id, str) or not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        raise CallerRefused("customer is the customer's external id", 400)
    if not isinstance(signature, str) or len(signature) != 64:
        raise CallerRefused("signature is the HMAC-SHA256 of the customer id, in hex", 401)
    if row.widget_secret_sealed is None:
        raise CallerRefused("the widget secret is not set: rotate it first", 401)
    secret = _box(secret_key).decrypt(row.widget_secret_sealed, bound_to=str(tenant_id))
    if not hmac.compare_digest(customer_signature(secret, external_id), signature.lower()):
        raise CallerRefused("the signature does not match this customer", 401)
    customer = await CustomerRepository(session, tenant_id).get_by_external_id(external_id)
    settings = await load_settings(session, tenant_id)
    return WidgetCaller(
        tenant_id=tenant_id,
        external_id=external_id,
        customer_id=customer.id if customer is not None else None,
        settings=settings,
    )
