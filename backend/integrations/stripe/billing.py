"""Billing actions on Stripe through the `stripe` package ({CHURNSAVER_STRIPE_API_URL}, the tenant's
secret key): `cancel_at_period_end=false` to withdraw a cancel, a one-use coupon as the
subscription's discount, `trial_end` for free days, `pause_collection` to pause and resume, paying
the open invoice, a billing-portal session for a card update, the subscription's one price swapped
for a plan switch, and a cancel at the period's end.

Every request carries an Idempotency-Key derived from the redemption's, one per request of an
action. The package's own retries are off: `with_retries` retries timeouts, connection errors,
429 and 5xx, and records each try.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import stripe

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.integrations.actions import (
    BillingAction,
    CallRecord,
    ConnectionCheckFailed,
    ProviderAnswer,
    TransientFailure,
    with_retries,
)

DAYS_PER_CYCLE = 30


class Refused(Exception):
    """Stripe answered 4xx: the action is refused, with Stripe's message."""


class StripeBilling:
    provider = "STRIPE"

    def __init__(self, api_url: str, api_key: str) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_url.rstrip("/")},
            http_client=stripe.HTTPXClient(),
            max_network_retries=0,
        )

    async def check(self) -> str:
        """One harmless call (`GET /v1/account`): the account the key belongs to."""
        try:
            account = await self.client.v1.accounts.retrieve_current_async()
        except stripe.StripeError as error:
            raise ConnectionCheckFailed(f"Stripe answered {error.http_status}: {_message(error)}") from None
        return str(account.id)

    async def apply(self, action: BillingAction) -> ProviderAnswer:
        calls: list[CallRecord] = []

        async def attempt() -> ProviderAnswer:
            try:
                return await self._apply(action, calls)
            except Refused as refused:
                return ProviderAnswer(applied=False, reason=str(refused), answer={"refused": str(refused)}, calls=calls)

        return await with_retries(attempt, calls)

    async def _apply(self, action: BillingAction, calls: list[CallRecord]) -> ProviderAnswer:
        v1, key, kind = self.client.v1, action.idempotency_key, action.kind
        subscription = action.subscription_id
        if kind == "UPDATE_PAYMENT":
            if not action.customer_ref:
                raise Refused("the customer has no Stripe customer id")
            params: dict[str, Any] = {"customer": action.customer_ref}
            if action.return_url:
                params["return_url"] = action.return_url
            answer = await self._call(
                calls,
                "billing_portal_session",
                params,
                lambda o: v1.billing_portal.sessions.create_async(params, o),  # type: ignore[arg-type]
                key,
            )
            return ProviderAnswer(applied=True, answer=answer, hosted_url=answer.get("url"), calls=calls)
        if kind == "RETRY_PAYMENT":
            invoice = action.value.get("invoice_id")
            if not invoice:
                raise Refused("no open Stripe invoice to pay")
            answer = await self._call(
                calls, "pay_invoice", {"invoice": invoice}, lambda o: v1.invoices.pay_async(invoice, None, o), key
            )
            return ProviderAnswer(applied=True, answer=answer, calls=calls)
        if not subscription:
            raise Refused("the customer has no Stripe subscription")
        update: dict[str, Any]
        if kind == "UNCANCEL":
            update = {"cancel_at_period_end": False}
        elif kind == "CANCEL":
            update = {"cancel_at_period_end": True}
            if action.comment or action.reason:
                update["cancellation_details"] = {"comment": (action.comment or action.reason or "")[:500]}
        elif kind == "PAUSE":
            resumes = utcnow() + timedelta(days=DAYS_PER_CYCLE * int(action.value["cycles"]))
            update = {"pause_collection": {"behavior": "void", "resumes_at": int(resumes.timestamp())}}
        elif kind == "RESUME":
            update = {"pause_collection": ""}
        elif kind == "FREE_DAYS":
            trial_end = utcnow() + timedelta(days=int(action.value["days"]))
            update = {"trial_end": int(trial_end.timestamp()), "proration_behavior": "none"}
        elif kind in ("PERCENT_OFF", "AMOUNT_OFF"):
            coupon = await self._coupon(action, calls)
            update = {"discounts": [{"coupon": coupon}]}
        elif kind == "PLAN_SWITCH":
            current = await self._call(
                calls,
                "retrieve_subscription",
                {"subscription": subscription},
                lambda o: v1.subscriptions.retrieve_async(subscription, None, o),
                key + "-retrieve",
            )
            items = (current.get("items") or {}).get("data") or []
            if len(items) != 1:
                raise Refused("a plan switch needs a subscription with exactly one price")
            update = {"items": [{"id": items[0]["id"], "price": str(action.value["plan"])}]}
        else:
            raise Refused(f"Stripe cannot apply a {kind} offer")
        if action.cancel_scheduled and kind not in ("UNCANCEL", "CANCEL", "PAUSE"):
            update["cancel_at_period_end"] = False
        answer = await self._call(
            calls,
            f"subscription_{kind.lower()}",
            {"subscription": subscription} | update,
            lambda o: v1.subscriptions.update_async(subscription, update, o),  # type: ignore[arg-type]
            key,
        )
        return ProviderAnswer(applied=True, answer=answer, calls=calls)

    async def _coupon(self, action: BillingAction, calls: list[CallRecord]) -> str:
        value = action.value
        params: dict[str, Any] = {
            "duration": "repeating",
            "duration_in_months": int(value["cycles"]),
            "max_redemptions": 1,
            "name": "Churn Saver offer",
        }
        if action.kind == "PERCENT_OFF":
            params["percent_off"] = int(value["percent"])
        else:
            params |= {"amount_off": int(value["amount"]), "currency": str(value["currency"]).lower()}
        answer = await self._call(
            calls,
            "create_coupon",
            params,
            lambda o: self.client.v1.coupons.create_async(params, o),  # type: ignore[arg-type]
            action.idempotency_key + "-coupon",
        )
        return str(answer["id"])

    async def _call(
        self,
        calls: list[CallRecord],
        name: str,
        request: dict[str, Any],
        send: Callable[[Any], Awaitable[Any]],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """One request, recorded; 4xx is Refused, 429/5xx and no answer a TransientFailure."""
        try:
            result = await send({"idempotency_key": idempotency_key})
        except stripe.APIConnectionError as error:
            calls.append(CallRecord(action=name, request=request, status_code=None, answer={"error": str(error)[:300]}))
            raise TransientFailure("Stripe did not answer") from None
        except stripe.StripeError as error:
            status = error.http_status or 0
            body = error.json_body if isinstance(error.json_body, dict) else {"error": _message(error)}
            calls.append(CallRecord(action=name, request=request, status_code=status, answer=body))
            if status == 429 or status >= 500:
                raise TransientFailure(f"Stripe answered {status}") from None
            raise Refused(f"Stripe refused it ({status}): {_message(error)}") from None
        answer = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        calls.append(CallRecord(action=name, request=request, status_code=200, answer=answer))
        return answer


def _message(error: stripe.StripeError) -> str:
    body = error.json_body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or "")[:300]
    return (error.user_message or str(error))[:300]
