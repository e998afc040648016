"""Billing actions on Whop through whop-sdk ({CHURNSAVER_WHOP_API_URL}/api/v1, the tenant's API key
as bearer token): withdraw a scheduled cancel, add free days, pause and resume a membership, a
one-use promo code applied for a discount, a payment retried, the membership's manage page for a
card update, and a cancel at the period's end.

Every request carries an Idempotency-Key derived from the redemption's, one per request of an
action, so a retried action is applied once. whop-sdk's own retries are off: `with_retries` retries
timeouts, connection errors, 429 and 5xx, and records each try.
"""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from whop_sdk import AsyncWhop
from whop_sdk.core.api_error import ApiError
from whop_sdk.environment import WhopEnvironment

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.integrations.actions import (
    BillingAction,
    CallRecord,
    ConnectionCheckFailed,
    ProviderAnswer,
    TransientFailure,
    with_retries,
)

TIMEOUT_SECONDS = 15.0
DAYS_PER_CYCLE = 30  # a pause of n cycles resumes by itself after n x 30 days


class Refused(Exception):
    """Whop answered 4xx: the action is refused, with Whop's message."""


class WhopBilling:
    provider = "WHOP"

    def __init__(self, api_url: str, api_key: str, account_id: str | None = None) -> None:
        base = api_url.rstrip("/") + "/api/v1"
        self.client = AsyncWhop(
            token=api_key,
            environment=WhopEnvironment(api=base, vault=base),
            timeout=TIMEOUT_SECONDS,
            max_retries=0,
        )
        self.account_id = account_id

    async def check(self) -> str:
        """One harmless call (`GET /accounts/me`): the account the key belongs to."""
        try:
            account = await self.client.accounts.me(request_options={"max_retries": 0})
        except ApiError as error:
            raise ConnectionCheckFailed(f"Whop answered {error.status_code}: {_message(error)}") from None
        except httpx.TransportError as error:
            raise ConnectionCheckFailed(f"Whop is unreachable: {type(error).__name__}") from None
        return account.id

    async def apply(self, action: BillingAction) -> ProviderAnswer:
        calls: list[CallRecord] = []

        async def attempt() -> ProviderAnswer:
            try:
                return await self._apply(action, calls)
            except Refused as refused:
                return ProviderAnswer(applied=False, reason=str(refused), answer={"refused": str(refused)}, calls=calls)

        return await with_retries(attempt, calls)

    async def _apply(self, action: BillingAction, calls: list[CallRecord]) -> ProviderAnswer:
        membership = action.subscription_id
        if not membership:
            raise Refused("the customer has no Whop membership")
        memberships = self.client.memberships
        key = action.idempotency_key
        kind = action.kind
        if kind == "UNCANCEL":
            result = await self._call(
                calls,
                "uncancel",
                {"membership": membership, "cancel_at_period_end": False},
                lambda options: memberships.update(membership, cancel_at_period_end=False, request_options=options),
                key,
            )
        elif kind == "RESUME":
            result = await self._call(
                calls,
                "resume",
                {"membership": membership},
                lambda options: memberships.resume(membership, request_options=options),
                key,
            )
        elif kind == "PAUSE":
            until = (utcnow() + timedelta(days=DAYS_PER_CYCLE * int(action.value["cycles"]))).isoformat()
            result = await self._call(
                calls,
                "pause",
                {"membership": membership, "until": until},
                lambda options: memberships.pause(membership, until=until, request_options=options),
                key,
            )
        elif kind == "FREE_DAYS":
            days = int(action.value["days"])
            result = await self._call(
                calls,
                "extend",
                {"membership": membership, "days": days},
                lambda options: memberships.extend(membership, days=days, request_options=options),
                key,
            )
        elif kind in ("PERCENT_OFF", "AMOUNT_OFF"):
            result = await self._discount(action, membership, calls)
        elif kind == "RETRY_PAYMENT":
            payment = action.value.get("payment_id")
            if not payment:
                raise Refused("no failed Whop payment to retry")
            result = await self._call(
                calls,
                "retry_payment",
                {"payment": payment},
                lambda options: self.client.payments.retry(payment, request_options=options),
                key,
            )
        elif kind == "UPDATE_PAYMENT":
            result = await self._call(
                calls,
                "manage_url",
                {"membership": membership},
                lambda options: memberships.retrieve(membership, request_options=options),
                key,
            )
            url = result.get("manage_url")
            if not url:
                raise Refused("Whop gave no page to update the payment method")
            return ProviderAnswer(applied=True, answer=result, hosted_url=url, calls=calls)
        elif kind == "CANCEL":
            result = await self._call(
                calls,
                "cancel",
                {"membership": membership, "cancel_at_period_end": True},
                lambda options: memberships.cancel(
                    membership, cancel_at_period_end=True, reason=action.reason, request_options=options
                ),
                key,
            )
        else:  # PLAN_SWITCH: Whop's API has no call that moves a membership to another plan
            raise Refused(f"Whop cannot apply a {kind} offer")
        if action.cancel_scheduled and kind not in ("UNCANCEL", "CANCEL", "PAUSE"):
            await self._call(
                calls,
                "uncancel",
                {"membership": membership, "cancel_at_period_end": False},
                lambda options: memberships.update(membership, cancel_at_period_end=False, request_options=options),
                key + "-uncancel",
            )
        return ProviderAnswer(applied=True, answer=result, calls=calls)

    async def _discount(self, action: BillingAction, membership: str, calls: list[CallRecord]) -> dict[str, Any]:
        """A one-use promo code for this redemption, applied to the membership."""
        if not self.account_id:
            raise Refused("the Whop connection names no account to create promo codes in")
        value = action.value
        percent = action.kind == "PERCENT_OFF"
        code = "CS" + hashlib.sha256(action.idempotency_key.encode()).hexdigest()[:10].upper()
        amount_off = float(value["percent"]) if percent else int(value["amount"]) / 100
        currency = "usd" if percent else str(value["currency"]).lower()
        request = {
            "account_id": self.account_id,
            "code": code,
            "amount_off": amount_off,
            "promo_type": "percentage" if percent else "flat_amount",
            "promo_duration_months": int(value["cycles"]),
            "stock": 1,
        }
        await self._call(
            calls,
            "create_promo_code",
            request,
            lambda options: self.client.promo_codes.create(
                account_id=self.account_id or "",
                amount_off=amount_off,
                base_currency=currency,
                code=code,
                new_users_only=False,
                promo_duration_months=int(value["cycles"]),
                promo_type="percentage" if percent else "flat_amount",
                existing_memberships_only=True,
                one_per_customer=True,
                stock=1,
                unlimited_stock=False,
                request_options=options,
            ),
            action.idempotency_key + "-promo",
        )
        return await self._call(
            calls,
            "apply_promo_code",
            {"membership": membership, "promo_code": code},
            lambda options: self.client.memberships.apply_promo_code(
                membership, promo_code=code, request_options=options
            ),
            action.idempotency_key + "-apply",
        )

    async def _call(
        self,
        calls: list[CallRecord],
        name: str,
        request: dict[str, Any],
        send: Callable[[Any], Awaitable[Any]],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """One request, recorded; 4xx is Refused, 429/5xx and no answer a TransientFailure."""
        options = {"additional_headers": {"Idempotency-Key": idempotency_key}, "max_retries": 0}
        try:
            result = await send(options)
        except ApiError as error:
            status = error.status_code or 0
            body = error.body if isinstance(error.body, dict) else {"body": str(error.body)[:500]}
            calls.append(CallRecord(action=name, request=request, status_code=status, answer=body))
            if status == 429 or status >= 500:
                raise TransientFailure(f"Whop answered {status}") from None
            raise Refused(f"Whop refused it ({status}): {_message(error)}") from None
        except httpx.TransportError as error:
            calls.append(
                CallRecord(action=name, request=request, status_code=None, answer={"error": type(error).__name__})
            )
            raise TransientFailure(f"Whop did not answer: {type(error).__name__}") from None
        answer = result.model_dump(mode="json") if hasattr(result, "model_dump") else {"result": str(result)}
        calls.append(CallRecord(action=name, request=request, status_code=200, answer=answer))
        return answer


def _message(error: ApiError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if body.get("message"):
            return str(body["message"])[:300]
    return str(body)[:300]
