"""Bank HMAC secrets at rest: AES-256-GCM under a key from settings (`bank_secret_key`), never in clear.

The database holds `v1:<base64(nonce ‖ ciphertext ‖ tag)>`; the client id is the associated data, so a
ciphertext copied onto another client's row does not open. The key lives outside the database (a secret
store): a dump, a replica or a read-only role sees only ciphertext. Changing the key makes the stored
secrets unreadable (signatures are then refused): issue every client a new secret after a key change."""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"
_NONCE = 12


class SecretUnreadable(ValueError):
    """A stored secret that does not open with the configured key (wrong key, or tampered with)."""


@lru_cache(maxsize=4)  # one key in practice (two while tests or a migration use another)
def _aead(key: str) -> AESGCM:
    # The setting is text of any length (≥ 32 bytes outside development); one SHA-256 with a
    # purpose label turns it into the 256-bit AES key, so the same text used for another setting
    # would still give another key.
    return AESGCM(hashlib.sha256(b"fupin.bank_secret.v1\x00" + key.encode()).digest())


def seal(plain: str, *, client_id: str, key: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = _aead(key).encrypt(nonce, plain.encode(), client_id.encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def unseal(stored: str, *, client_id: str, key: str) -> str:
    if not is_sealed(stored):
        raise SecretUnreadable("not an encrypted secret")
    try:
        raw = base64.b64decode(stored[len(PREFIX):], validate=True)
        return _aead(key).decrypt(raw[:_NONCE], raw[_NONCE:], client_id.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("secret does not open with the configured bank_secret_key") from exc
