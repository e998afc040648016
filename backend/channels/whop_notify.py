"""Whop notifications through whop-sdk (POST {CHURNSAVER_WHOP_API_URL}/notifications with the
tenant's API key as bearer token), to one user of the tenant's Whop account.

Each request carries the message id as its Idempotency-Key, so a request repeated after no answer
is not a second notification on the provider's side. whop-sdk's own retries are turned off: the
send job retries, with backoff, and records each try.
"""

import httpx
from whop_sdk import AsyncWhop
from whop_sdk.core.api_error import ApiError
from whop_sdk.environment import WhopEnvironment

from churnsaver.backend.channels.outcomes import OutcomeUnknown, PermanentFailure, TemporaryFailure

TIMEOUT_SECONDS = 15.0


async def notify(
    api_url: str,
    api_key: str,
    *,
    account_id: str,
    user_id: str,
    title: str,
    content: str,
    idempotency_key: str,
) -> None:
    client = AsyncWhop(
        token=api_key,
        environment=WhopEnvironment(api=api_url.rstrip("/") + "/api/v1", vault=api_url.rstrip("/") + "/api/v1"),
        timeout=TIMEOUT_SECONDS,
        max_retries=0,
    )
    try:
        result = await client.notifications.create(
            account_id=account_id,
            user_ids=[user_id],
            title=title,
            content=content,
            request_options={"additional_headers": {"Idempotency-Key": idempotency_key}, "max_retries": 0},
        )
    except ApiError as error:
        status = error.status_code or 0
        if status == 429 or status >= 500:
            raise TemporaryFailure(f"Whop answered {status}") from None
        raise PermanentFailure(f"Whop refused the notification ({status}): {error.body}", suppress=False) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise TemporaryFailure(f"Whop unreachable: {type(error).__name__}") from None
    except httpx.TransportError as error:
        raise OutcomeUnknown(f"Whop did not answer: {type(error).__name__}") from None
    if not result.success:
        raise PermanentFailure("Whop did not queue the notification", suppress=False)
