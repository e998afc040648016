"""Redeeming an offer on the merchant's billing system, cancelling through it, and the tenant's
billing connection.

`redeem` runs in its own transactions, so that nothing is "accepted" on our side while billing
says no:
1. one transaction re-checks eligibility, reserves the budget, inserts the redemption PENDING
   (its idempotency key unique: a second call with the key gets the first's outcome) and
   enqueues the fallback job `billing.apply_redemption` for a little later; it commits;
2. the provider is called with the redemption's idempotency key (retried on timeouts and 5xx);
3. one transaction settles it APPLIED (case event `offer_accepted`) or FAILED with the provider's
   reason (budget released, case event `offer_failed`, the case stays open), records every call,
   and takes the fallback job back. If no try got an answer the redemption stays PENDING and the
   fallback job asks again, with the same key, until the provider answers.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.billing.adapters import (
    PROVIDERS,
    SANDBOX,
    adapter_for,
    key_box,
    tenant_adapter,
)
from churnsaver.backend.billing.models import BillingCall, BillingConnection
from churnsaver.backend.billing.repository import BillingConnectionRepository
from churnsaver.backend.billing.sandbox import sandbox_event
from churnsaver.backend.campaigns import service as campaigns
from churnsaver.backend.cases.reconcile import reconcile_customers
from churnsaver.backend.core.bulk import start_bulk_transaction
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import DomainError, InvalidInput, NotFound
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.backend.customers.repository import (
    CustomerEventRepository,
    CustomerIdentityRepository,
    SubscriptionRepository,
)
from churnsaver.backend.integrations.actions import (
    BillingAction,
    CallRecord,
    ConnectionCheckFailed,
    ProviderUnavailable,
)
from churnsaver.backend.offers import service as offers
from churnsaver.backend.offers.models import Offer, OfferKind, Redemption, RedemptionStatus
from churnsaver.backend.offers.repository import RedemptionRepository
from churnsaver.jobs.outbox import enqueue, withdraw
from churnsaver.tenants.auth import AuthSubject

APPLY_REDEMPTION = "billing.apply_redemption"
FALLBACK_AFTER = timedelta(minutes=2)  # the first call normally settles it long before
MAX_KEY = 200
logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RedemptionOutcome:
    status: str  # PENDING | APPLIED | FAILED
    reason: str | None
    redemption_id: uuid.UUID
    offer: Offer
    hosted_url: str | None = None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    canceled: bool
    reason: str | None
    provider: str


async def redeem(
    db: Database,
    *,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    source: str,
    idempotency_key: str,
    cancel_reason: str | None = None,
    return_url: str | None = None,
) -> RedemptionOutcome:
    """Accept the offer for the customer and apply it on billing (see the module's steps). Raises
    NotFound, offers.OfferNotEligible, offers.AlreadyRedeemed or offers.OverBudget; a repeated key
    returns the first call's outcome (PENDING while that call is still asking the provider)."""
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY:
        raise InvalidInput(f"an idempotency key is 1 to {MAX_KEY} characters")
    try:
        async with db.tenant_unit_of_work(tenant_id) as session:
            # SQLite: the write lock first, so that concurrent accepts take turns instead of failing.
            await session.run_sync(start_bulk_transaction, Redemption.__table__)
            existing = await offers.redemption_by_key(session, tenant_id, idempotency_key)
            if existing is not None:
                return await _outcome(session, tenant_id, existing)
            holdout = await campaigns.in_holdout(session, tenant_id, customer_id)
            quote = await offers.quote(
                session, tenant_id, offer_id, customer_id, case_id, holdout=holdout, cancel_reason=cancel_reason
            )
            await offers.reserve(session, tenant_id, quote)
            redemption = offers.open_redemption(
                session, tenant_id, quote, source=source, idempotency_key=idempotency_key
            )
            redemption.action = await _action(session, tenant_id, quote, redemption, return_url)
            await session.flush()
            fallback = enqueue(
                session,
                APPLY_REDEMPTION,
                tenant_id=tenant_id,
                redemption_id=str(redemption.id),
                not_before=utcnow() + FALLBACK_AFTER,
            )
    except (IntegrityError, DomainError):
        # The same key at the same moment: the other call got there first (its redemption makes
        # this one's checks fail, or its key is taken at insert); its outcome is ours.
        async with db.tenant_session(tenant_id) as session:
            existing = await offers.redemption_by_key(session, tenant_id, idempotency_key)
            if existing is None:
                raise
            return await _outcome(session, tenant_id, existing)
    return await apply_redemption(db, tenant_id, redemption.id, fallback_job=fallback)


async def apply_redemption(
    db: Database, tenant_id: uuid.UUID, redemption_id: uuid.UUID, *, fallback_job: uuid.UUID | None = None
) -> RedemptionOutcome:
    """Ask the provider for a PENDING redemption and settle it; a settled one is left as it is."""
    async with db.tenant_session(tenant_id) as session:
        redemption = await _redemption(session, tenant_id, redemption_id)
        if redemption.status != RedemptionStatus.PENDING.value:
            return await _outcome(session, tenant_id, redemption)
        adapter = await tenant_adapter(session, db.settings, tenant_id)
    action = BillingAction(**redemption.action)
    try:
        answer = await adapter.apply(action)
    except ProviderUnavailable as unavailable:
        async with db.tenant_unit_of_work(tenant_id) as session:
            _record_calls(session, tenant_id, redemption, adapter.provider, action, unavailable.calls)
            pending = await _redemption(session, tenant_id, redemption_id)
            pending.attempts += 1
            logger.warning("billing.unanswered", tenant_id=str(tenant_id), redemption_id=str(redemption_id))
            return await _outcome(session, tenant_id, pending)
    async with db.tenant_unit_of_work(tenant_id) as session:
        await session.run_sync(start_bulk_transaction, Redemption.__table__)
        _record_calls(session, tenant_id, redemption, adapter.provider, action, answer.calls)
        settled = await offers.settle(
            session,
            tenant_id,
            redemption_id,
            applied=answer.applied,
            reason=answer.reason,
            answer=answer.answer,
            provider=adapter.provider,
            hosted_url=answer.hosted_url,
            actor=f"billing:{adapter.provider.lower()}",
        )
        if settled is not None and answer.applied and adapter.provider == SANDBOX:
            await _apply_sandbox(session, tenant_id, settled, action)
        if fallback_job is not None:
            await withdraw(session, fallback_job)
        return await _outcome(session, tenant_id, await _redemption(session, tenant_id, redemption_id))


async def cancel_subscription(
    db: Database, *, tenant_id: uuid.UUID, customer_id: uuid.UUID, reason: str | None, comment: str | None
) -> CancelOutcome:
    """Schedule the customer's current subscription to cancel at the period's end, through the
    tenant's billing adapter (the cancel flow's last step). The provider's webhook, or the sandbox's
    event, then opens the CANCELLATION_SCHEDULED case as any cancellation does."""
    for text, name in ((reason, "reason"), (comment, "comment")):
        if text is not None and (not isinstance(text, str) or len(text) > 2000):
            raise InvalidInput(f"a {name} is at most 2000 characters")
    async with db.tenant_session(tenant_id) as session:
        subscription = (await SubscriptionRepository(session, tenant_id).current_by_customer([customer_id])).get(
            customer_id
        )
        if subscription is None:
            raise NotFound("subscription")
        identities = (await CustomerIdentityRepository(session, tenant_id).by_customer([customer_id])).get(
            customer_id, []
        )
        ref = next((i.provider_id for i in identities if i.provider == subscription.provider), None)
        adapter = await tenant_adapter(session, db.settings, tenant_id)
    key = f"cancel:{subscription.provider}:{subscription.external_id}:{subscription.state_key}"
    action = BillingAction(
        kind="CANCEL",
        value={},
        idempotency_key=key[:MAX_KEY],
        subscription_id=subscription.external_id,
        customer_ref=ref,
        reason=reason,
        comment=comment,
    )
    try:
        answer = await adapter.apply(action)
    except ProviderUnavailable as unavailable:
        return CancelOutcome(canceled=False, reason=f"billing did not answer: {unavailable.reason}", provider="")
    async with db.tenant_unit_of_work(tenant_id) as session:
        for call in answer.calls:
            session.add(_call_row(tenant_id, None, customer_id, adapter.provider, action, call))
        if answer.applied and adapter.provider == SANDBOX and ref is not None:
            event = sandbox_event(
                action, provider=subscription.provider, customer_ref=ref, redemption_id=uuid.uuid4(), at=utcnow()
            )
            if event is not None:
                result = await apply_events(session, tenant_id, [event])
                await reconcile_customers(session, tenant_id, result.changed_customers, actor="billing:sandbox")
    return CancelOutcome(canceled=answer.applied, reason=answer.reason, provider=adapter.provider)


# The tenant's billing connection (GraphQL).


async def connect_billing(
    session: AsyncSession, subject: AuthSubject, settings: Settings, *, provider: str, api_key: str | None
) -> BillingConnection:
    """Connect the tenant's billing: the key checked with one harmless call, then stored encrypted
    (never readable back). InvalidInput when the provider refuses the key."""
    subject.require_write()
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider is one of {', '.join(PROVIDERS)}")
    if provider != SANDBOX and (not api_key or not isinstance(api_key, str) or len(api_key) > 500):
        raise InvalidInput(f"{provider} needs an API key")
    key = api_key if provider != SANDBOX else None
    try:
        account = await adapter_for(settings, provider, key).check()
    except ConnectionCheckFailed as failed:
        raise InvalidInput(f"{provider} refused the key: {failed.reason}") from None
    now = utcnow()
    repository = BillingConnectionRepository(session, subject.tenant_id)
    connection = await repository.find()
    if connection is None:
        connection = BillingConnection(tenant_id=subject.tenant_id, provider=provider, checked_at=now)
        session.add(connection)
    connection.provider = provider
    connection.api_key_encrypted = key_box(settings).encrypt(key, bound_to=str(subject.tenant_id)) if key else None
    connection.key_hint = key[-4:] if key else None
    connection.account = account[:255]
    connection.checked_at = now
    connection.updated_at = now
    await session.flush()
    return connection


async def billing_connection(session: AsyncSession, subject: AuthSubject) -> BillingConnection | None:
    subject.require_read()
    return await BillingConnectionRepository(session, subject.tenant_id).find()


# Helpers.


async def _action(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    quote: offers.Quote,
    redemption: Redemption,
    return_url: str | None,
) -> dict[str, Any]:
    """The stored form of the BillingAction a redemption asks for."""
    subscription = quote.subscription
    ref = None
    if subscription is not None:
        identities = (await CustomerIdentityRepository(session, tenant_id).by_customer([quote.customer.id])).get(
            quote.customer.id, []
        )
        ref = next((i.provider_id for i in identities if i.provider == subscription.provider), None)
    value = dict(quote.offer.value)
    if quote.offer.kind == OfferKind.RETRY_PAYMENT:
        value |= await _failed_payment(session, tenant_id, quote)
    return {
        "kind": quote.offer.kind,
        "value": value,
        "idempotency_key": f"churnsaver-redemption-{redemption.id}",
        "subscription_id": subscription.external_id if subscription is not None else None,
        "customer_ref": ref,
        "cancel_scheduled": bool(subscription is not None and subscription.cancel_at_period_end),
        "return_url": return_url,
    }


async def _failed_payment(session: AsyncSession, tenant_id: uuid.UUID, quote: offers.Quote) -> dict[str, Any]:
    """The provider's ids of the customer's latest failed payment (Whop payment, Stripe invoice)."""
    events = CustomerEventRepository(session, tenant_id)
    statement = (
        events.select_readable(CustomerEvent.properties)
        .where(CustomerEvent.customer_id == quote.customer.id, CustomerEvent.type == EventType.payment_failed.value)
        .order_by(CustomerEvent.occurred_at.desc())
        .limit(1)
    )
    properties = (await session.execute(statement)).scalar_one_or_none() or {}
    invoice = (quote.case.details.get("invoice_id") if quote.case else None) or properties.get("invoice_id")
    return {
        name: found
        for name, found in (("payment_id", properties.get("payment_id")), ("invoice_id", invoice))
        if isinstance(found, str)
    }


async def _apply_sandbox(
    session: AsyncSession, tenant_id: uuid.UUID, redemption: Redemption, action: BillingAction
) -> None:
    """What the sandbox applied, on our own subscription state; cases follow as from a webhook."""
    subscriptions = SubscriptionRepository(session, tenant_id)
    current = (await subscriptions.current_by_customer([redemption.customer_id])).get(redemption.customer_id)
    if current is None or action.customer_ref is None:
        return
    event = sandbox_event(
        action, provider=current.provider, customer_ref=action.customer_ref, redemption_id=redemption.id, at=utcnow()
    )
    if event is None:
        return
    result = await apply_events(session, tenant_id, [event])
    await reconcile_customers(session, tenant_id, result.changed_customers, actor="billing:sandbox")


def _record_calls(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    redemption: Redemption,
    provider: str,
    action: BillingAction,
    calls: list[CallRecord],
) -> None:
    for call in calls:
        session.add(_call_row(tenant_id, redemption.id, redemption.customer_id, provider, action, call))


def _call_row(
    tenant_id: uuid.UUID,
    redemption_id: uuid.UUID | None,
    customer_id: uuid.UUID | None,
    provider: str,
    action: BillingAction,
    call: CallRecord,
) -> BillingCall:
    return BillingCall(
        tenant_id=tenant_id,
        redemption_id=redemption_id,
        customer_id=customer_id,
        provider=provider,
        action=call.action[:32],
        idempotency_key=action.idempotency_key,
        request=call.request,
        status_code=call.status_code,
        answer=call.answer,
    )


async def _redemption(session: AsyncSession, tenant_id: uuid.UUID, redemption_id: uuid.UUID) -> Redemption:
    return await RedemptionRepository(session, tenant_id).get_or_raise(redemption_id, what="redemption")


async def _outcome(session: AsyncSession, tenant_id: uuid.UUID, redemption: Redemption) -> RedemptionOutcome:
    offer = await offers.get_offer_for(session, tenant_id, redemption.offer_id)
    if offer is None:
        raise NotFound("offer")
    return RedemptionOutcome(
        status=redemption.status,
        reason=redemption.reason,
        redemption_id=redemption.id,
        offer=offer,
        hosted_url=redemption.hosted_url,
    )
