"""Encryption of secrets at rest (webhook signing secrets, later SSO and MFA secrets).

AES-256-GCM with a key derived from CHURNSAVER_SECRET_KEY by HKDF; each purpose gets its own
key, and the row's identity is bound in as associated data, so a ciphertext copied onto another
row does not decrypt.
"""

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class SecretBox:
    def __init__(self, secret_key: str, purpose: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"churnsaver:{purpose}".encode()).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, bound_to: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())

    def decrypt(self, ciphertext: bytes, *, bound_to: str) -> str:
        nonce, sealed = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
        return self._aead.decrypt(nonce, sealed, bound_to.encode()).decode()
