"""The card-data vault: PANs encrypted with AES-256-GCM, keyed digests for look-ups.

Keys come from settings: `CARD_ENCRYPTION_KEY` is the current key; retired keys stay in
`CARD_ENCRYPTION_PREVIOUS_KEYS` (comma-separated) until `banking cards rotate-key` has
re-encrypted every row under the current key. Each key's id is derived from the key
itself, so no id needs configuring, and each ciphertext carries the id of its key.

The PAN digest (HMAC-SHA256) lets the service find a card by number and enforce
uniqueness without decrypting. The CVV is never stored: only an HMAC bound to the card,
which can verify a CVV but not reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class VaultError(Exception):
    """Ciphertext that no configured key can open, or that was tampered with."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"banking-card-vault", info=purpose
    ).derive(secret.encode())


@dataclass(frozen=True, slots=True)
class VaultKey:
    key_id: str
    encryption_key: bytes
    digest_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> VaultKey:
        encryption_key = _derive(secret, b"pan-encryption-v1")
        key_id = hashlib.sha256(b"key-id" + encryption_key).hexdigest()[:12]
        return cls(key_id, encryption_key, _derive(secret, b"lookup-digest-v1"))


class Vault:
    def __init__(self, current_secret: str, previous_secrets: list[str] | None = None) -> None:
        if not current_secret:
            raise VaultError("CARD_ENCRYPTION_KEY is not set")
        self.current = VaultKey.from_secret(current_secret)
        self.keys = {self.current.key_id: self.current}
        for secret in previous_secrets or []:
            key = VaultKey.from_secret(secret)
            self.keys.setdefault(key.key_id, key)

    def _key(self, key_id: str) -> VaultKey:
        try:
            return self.keys[key_id]
        except KeyError as exc:
            raise VaultError(f"no configured key with id {key_id}") from exc

    def encrypt_pan(self, pan: str, *, card_id: str) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext); the card id is authenticated as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current.encryption_key).encrypt(nonce, pan.encode(), card_id.encode())
        return self.current.key_id, nonce + sealed

    def decrypt_pan(self, key_id: str, blob: bytes, *, card_id: str) -> str:
        key = self._key(key_id)
        try:
            plain = AESGCM(key.encryption_key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], card_id.encode()
            )
        except Exception as exc:
            raise VaultError("card data cannot be decrypted") from exc
        return plain.decode()

    def pan_digest(self, pan: str, key_id: str | None = None) -> str:
        key = self._key(key_id) if key_id else self.current
        return hmac.new(key.digest_key, b"pan:" + pan.encode(), hashlib.sha256).hexdigest()

    def pan_digests(self, pan: str) -> list[str]:
        """The PAN's digest under every configured key (look-ups during a rotation)."""
        return [self.pan_digest(pan, key_id) for key_id in self.keys]

    def cvv_digest(self, cvv: str, *, card_id: str, key_id: str | None = None) -> str:
        key = self._key(key_id) if key_id else self.current
        message = b"cvv:" + card_id.encode() + b":" + cvv.encode()
        return hmac.new(key.digest_key, message, hashlib.sha256).hexdigest()

    def presented_cvv_digest(self, pan: str, cvv: str) -> str:
        """A keyed digest of a CVV as a request presented it with this card number, for
        request fingerprints: stands in for the CVV without revealing it, even to a
        brute force over every CVV (the key is not in the database)."""
        message = b"presented-cvv:" + pan.encode() + b":" + cvv.encode()
        return hmac.new(self.current.digest_key, message, hashlib.sha256).hexdigest()

    def verify_cvv(self, cvv: str, *, card_id: str, key_id: str, expected: str) -> bool:
        return hmac.compare_digest(self.cvv_digest(cvv, card_id=card_id, key_id=key_id), expected)


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def generate_pan(bin_prefix: str, length: int = 16) -> str:
    body = bin_prefix + "".join(
        secrets.choice("0123456789") for _ in range(length - 1 - len(bin_prefix))
    )
    return body + luhn_check_digit(body)


def generate_cvv() -> str:
    return f"{secrets.randbelow(1000):03d}"
