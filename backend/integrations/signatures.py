"""Webhook signatures as Whop and Stripe send them: verification on the raw body, and signing
(for the tests and the local test senders).

Two schemes:
- Standard Webhooks (Whop v1): `webhook-id`, `webhook-timestamp` and `webhook-signature`
  headers; base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`; one or more `v1,<sig>`.
- Timestamped hex (Whop legacy v5 `x-whop-signature`, Stripe `Stripe-Signature`):
  `t=<ts>,v1=<hex>[,v1=<hex>…]`; hex HMAC-SHA256 of `{ts}.{body}` keyed by the secret's bytes.

Each verifier takes every secret the endpoint currently accepts (two during a rotation) and
raises a `SignatureError` whose reason is safe to return to the sender. We keep our own ~60
lines rather than the `standardwebhooks` package: it reads the clock itself (so the reference
vector cannot be checked), and a malformed header escapes it as a bare ValueError.
"""

import base64
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache

TOLERANCE_SECONDS = 5 * 60
WHSEC_PREFIX = "whsec_"
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,15}")


class SignatureError(Exception):
    """A delivery's signature was refused; `reason` says why and is safe to show the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingSignature(SignatureError):
    pass


class MalformedSignature(SignatureError):
    pass


class StaleTimestamp(SignatureError):
    pass


class SignatureMismatch(SignatureError):
    pass


@lru_cache(maxsize=1024)
def standard_webhooks_key(secret: str) -> bytes:
    """A `whsec_` secret is base64 after its prefix, as the spec says; any other secret (Whop's
    dashboard issues plain ones) is used as its UTF-8 bytes, which is what Whop's own SDK does.
    Decoded once per secret: the endpoint cache keeps the same secrets in this process anyway."""
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret.removeprefix(WHSEC_PREFIX)
        # Some issuers drop the base64 padding; restoring it is unambiguous.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    return secret.encode()


def _hmac_sha256(key: bytes, content: bytes) -> bytes:
    # The one-shot digest runs in C; hmac.new builds two hash objects in Python per call.
    return hmac.digest(key, content, "sha256")


def _check_timestamp(value: str, now: float | None) -> int:
    if not TIMESTAMP_PATTERN.fullmatch(value):
        raise MalformedSignature("the signature timestamp is not a Unix time in seconds")
    timestamp = int(value)
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        raise StaleTimestamp("the signature timestamp is more than 5 minutes from now")
    return timestamp


def _matches_any(expected: Sequence[bytes], presented: Sequence[bytes]) -> bool:
    # Every pair is compared, in constant time each: how far a guess got is never measurable.
    matched = False
    for candidate in presented:
        for signature in expected:
            matched |= hmac.compare_digest(signature, candidate)
    return matched


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one secret."""
    digest = _hmac_sha256(standard_webhooks_key(secret), f"{msg_id}.{timestamp}.".encode() + body)
    return f"v1,{base64.b64encode(digest).decode()}"


def verify_standard_webhook(
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, now: float | None = None
) -> None:
    """Verify a Standard Webhooks delivery. `headers` is looked up by lower-case name."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not (msg_id and timestamp and signature_header):
        raise MissingSignature("webhook-id, webhook-timestamp and webhook-signature headers are required")
    checked = _check_timestamp(timestamp, now)
    presented = [
        signature.removeprefix("v1,").encode() for signature in signature_header.split() if signature.startswith("v1,")
    ]
    if not presented:
        raise MalformedSignature("webhook-signature holds no v1 signature")
    expected = [sign_standard_webhook(secret, msg_id, checked, body).removeprefix("v1,").encode() for secret in secrets]
    if not _matches_any(expected, presented):
        raise SignatureMismatch("no webhook-signature matches this endpoint's secret")


def sign_timestamped_hex(secret: str, timestamp: int, body: bytes) -> str:
    """A `t=…,v1=…` header value (Stripe-Signature, x-whop-signature) for one secret."""
    digest = _hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()
    return f"t={timestamp},v1={digest}"


def _verify_timestamped_hex(
    header_name: str, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float | None
) -> None:
    header = headers.get(header_name)
    if not header:
        raise MissingSignature(f"the {header_name} header is required")
    fields = [item.partition("=") for item in header.split(",")]
    timestamps = [value.strip() for key, _, value in fields if key.strip() == "t"]
    presented = [value.strip().encode() for key, _, value in fields if key.strip() == "v1"]
    if len(timestamps) != 1 or not presented:
        raise MalformedSignature(f"{header_name} must read t=<timestamp>,v1=<signature>")
    checked = _check_timestamp(timestamps[0], now)
    expected = [sign_timestamped_hex(secret, checked, body).rpartition("v1=")[2].encode() for secret in secrets]
    if not _matches_any(expected, presented):
        raise SignatureMismatch(f"no {header_name} signature matches this endpoint's secret")


def verify_whop_legacy(
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, now: float | None = None
) -> None:
    """Verify a Whop v5 delivery (`x-whop-signature`)."""
    _verify_timestamped_hex("x-whop-signature", body, headers, secrets, now)


def verify_stripe(body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, now: float | None = None) -> None:
    """Verify a Stripe delivery (`Stripe-Signature`); `v0` and other schemes are ignored."""
    _verify_timestamped_hex("stripe-signature", body, headers, secrets, now)
