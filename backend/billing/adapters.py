"""The billing adapter of a tenant: Whop (whop-sdk), Stripe (the `stripe` package) or the sandbox,
chosen by its billing connection. A tenant that never connected billing uses the sandbox, so the
demo and a new tenant's widget work end to end without a provider.
"""

import uuid
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.billing.models import BillingConnection
from churnsaver.backend.billing.repository import BillingConnectionRepository
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.crypto import SecretBox
from churnsaver.backend.integrations.actions import BillingAction, ProviderAnswer

SANDBOX = "SANDBOX"
WHOP = "WHOP"
STRIPE = "STRIPE"
PROVIDERS = (WHOP, STRIPE, SANDBOX)
KEY_PURPOSE = "billing-api-key"


class BillingAdapter(Protocol):
    provider: str

    async def apply(self, action: BillingAction) -> ProviderAnswer: ...

    async def check(self) -> str: ...


def key_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.resolved_secret_key, KEY_PURPOSE)


def api_key_of(settings: Settings, connection: BillingConnection) -> str | None:
    if connection.api_key_encrypted is None:
        return None
    return key_box(settings).decrypt(connection.api_key_encrypted, bound_to=str(connection.tenant_id))


def adapter_for(settings: Settings, provider: str, api_key: str | None, account: str | None = None) -> BillingAdapter:
    """The adapter of `provider` with its key (imported here: each client loads its SDK)."""
    if provider == WHOP and api_key:
        from churnsaver.backend.integrations.whop.billing import WhopBilling

        return WhopBilling(settings.whop_api_url, api_key, account)
    if provider == STRIPE and api_key:
        from churnsaver.backend.integrations.stripe.billing import StripeBilling

        return StripeBilling(settings.stripe_api_url, api_key)
    from churnsaver.backend.billing.sandbox import SandboxBilling

    return SandboxBilling()


async def tenant_adapter(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> BillingAdapter:
    connection = await BillingConnectionRepository(session, tenant_id).find()
    if connection is None:
        return adapter_for(settings, SANDBOX, None)
    return adapter_for(settings, connection.provider, api_key_of(settings, connection), connection.account)
