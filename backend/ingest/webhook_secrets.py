"""Webhook endpoint secrets: checked or generated, sealed bound to their endpoint, opened to verify.

A secret is shown once (when it is created or rotated) and stored only encrypted, bound to its
endpoint's id, so a ciphertext copied onto another endpoint does not open.
"""

import base64
import binascii
import secrets
import uuid
from functools import lru_cache

from churnsaver.backend.core.crypto import SecretBox
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.customers.events import Source
from churnsaver.backend.integrations.signatures import WHSEC_PREFIX, standard_webhooks_key

GENERATED_SECRET_BYTES = 32
SECRET_LENGTH = (16, 500)


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


def seal(endpoint_id: uuid.UUID, secret: str, secret_key: str) -> bytes:
    return secret_box(secret_key).encrypt(secret, bound_to=str(endpoint_id))
