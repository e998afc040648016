"""SMS through an HTTP provider speaking Twilio's Messages API, and Twilio's webhook signatures.

Sending: POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth (the
account SID and auth token), form fields To, From, Body and StatusCallback; a 201 reply's JSON
carries the message `sid`. A 4xx reply is permanent (for an invalid or unsubscribed number, the
address is suppressed); 429 and 5xx are temporary; a request that could not connect is
temporary; one that went out and got no answer may have been sent, and is not retried.

Webhooks (status callbacks, inbound messages) are signed: X-Twilio-Signature is the base64 of
HMAC-SHA1, keyed with the auth token, over the full URL followed by each form field's name and
value, sorted by name.
"""

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Mapping

import httpx

from churnsaver.backend.channels.outcomes import OutcomeUnknown, PermanentFailure, TemporaryFailure

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Twilio's error codes for a number that can never receive our SMS.
UNREACHABLE_NUMBER_CODES = {21211, 21214, 21610, 21612, 21614}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}

_clients: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One client (and its connection pool) per event loop."""
    key = id(asyncio.get_running_loop())
    if key not in _clients:
        _clients[key] = httpx.AsyncClient(timeout=TIMEOUT)
    return _clients[key]


async def send_sms(
    api_url: str, account_sid: str, auth_token: str, *, to: str, from_: str, body: str, status_callback: str
) -> str:
    """Send one SMS; returns the provider's message sid."""
    url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
    form = {"To": to, "From": from_, "Body": body, "StatusCallback": status_callback}
    try:
        response = await _client().post(url, data=form, auth=(account_sid, auth_token))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
        raise TemporaryFailure(f"SMS provider unreachable: {type(error).__name__}") from None
    except httpx.TransportError as error:
        raise OutcomeUnknown(f"SMS provider did not answer: {type(error).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TemporaryFailure(f"SMS provider answered {response.status_code}")
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code >= 400:
        code = payload.get("code") if isinstance(payload, dict) else None
        message = payload.get("message") if isinstance(payload, dict) else None
        reason = f"SMS provider refused ({response.status_code}, code {code}): {message or response.reason_phrase}"
        raise PermanentFailure(reason, suppress=code in UNREACHABLE_NUMBER_CODES)
    sid = payload.get("sid") if isinstance(payload, dict) else None
    if not isinstance(sid, str) or not sid:
        raise OutcomeUnknown(f"SMS provider answered {response.status_code} without a message sid")
    return sid


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    signed = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def signature_valid(auth_token: str, url: str, params: Mapping[str, str], given: str | None) -> bool:
    return given is not None and hmac.compare_digest(signature(auth_token, url, params), given)


def is_stop(body: str) -> bool:
    return body.strip().upper() in STOP_WORDS
