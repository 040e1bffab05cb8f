"""Webhook secrets: how they are drawn, kept (encrypted) and used to sign deliveries.

A delivery carries `Banking-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`, each `v1`
the HMAC-SHA256 under one valid secret of the bytes `<t>.<body>`; during a rotation's grace
period there is one `v1` per secret. Receivers check the timestamp is recent (replays)
and that one `v1` matches (`banking.client.verify_webhook`, docs/events.md).

Secrets are kept encrypted with AES-256-GCM under a key derived from `CARD_ENCRYPTION_KEY`
(the id of that key is stored beside the ciphertext, so keys listed in
`CARD_ENCRYPTION_PREVIOUS_KEYS` still open secrets sealed before a rotation); the
endpoint's id is authenticated as associated data, so a ciphertext cannot be moved to
another endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from banking.core.config import Settings
from banking.core.security import derive_key

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Banking-Signature"
EVENT_ID_HEADER = "Banking-Event-Id"
EVENT_TYPE_HEADER = "Banking-Event-Type"
DELIVERY_ID_HEADER = "Banking-Delivery-Id"
_NONCE_BYTES = 12


class SecretUnreadable(RuntimeError):
    """No configured key opens a stored webhook secret."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _keys(settings: Settings) -> list[tuple[str, bytes]]:
    keys = []
    for secret in [settings.card_encryption_key, *settings.card_encryption_previous_keys]:
        if not secret:
            continue
        key = derive_key(secret, "webhook-secret-v1")
        keys.append((hashlib.sha256(b"webhook-key-id" + key).hexdigest()[:12], key))
    return keys


def seal(settings: Settings, secret: str, *, endpoint_id: str) -> tuple[str, bytes]:
    """(key id, nonce + ciphertext) of a secret."""
    key_id, key = _keys(settings)[0]
    nonce = os.urandom(_NONCE_BYTES)
    return key_id, nonce + AESGCM(key).encrypt(nonce, secret.encode(), endpoint_id.encode())


def unseal(settings: Settings, key_id: str, sealed: bytes, *, endpoint_id: str) -> str:
    for candidate_id, key in _keys(settings):
        if candidate_id == key_id:
            try:
                plain = AESGCM(key).decrypt(
                    sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], endpoint_id.encode()
                )
            except Exception as exc:
                raise SecretUnreadable("the webhook secret cannot be decrypted") from exc
            return plain.decode()
    raise SecretUnreadable(f"no configured key with id {key_id}")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets_)])
