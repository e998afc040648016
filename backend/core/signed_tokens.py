"""Signed no-login tokens: `base64url(claims JSON) . base64url(HMAC-SHA256)`, the key derived from
the secret key for one purpose only, so a token minted for one use never verifies for another.

Channels' `/l/` links and offers' `/o/` links both build on it; each names its claims and checks
the expiry it carries.
"""

import base64
import binascii
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

MAX_TOKEN = 1000


class TokenError(Exception):
    """The token is malformed or its signature does not match."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=16)
def _key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"churnsaver:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_claims(payload: dict[str, Any], secret_key: str, purpose: str) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(_key(secret_key, purpose), body.encode(), hashlib.sha256).digest())}"


def verify_claims(token: str, secret_key: str, purpose: str) -> dict[str, Any]:
    """The claims of an authentic token (signature checked in constant time); TokenError otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1 or not token.isascii():
        raise TokenError("This link is not valid.")
    body, signature = token.split(".")
    expected = _b64(hmac.new(_key(secret_key, purpose), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        raise TokenError("This link is not valid: it may have been changed or copied incompletely.")
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        raise TokenError("This link is not valid.") from None
    if not isinstance(payload, dict):
        raise TokenError("This link is not valid.")
    return payload
