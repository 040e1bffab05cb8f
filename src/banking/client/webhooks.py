"""Verifying a webhook delivery's `Banking-Signature` on the receiving side."""

from __future__ import annotations

import time
from collections.abc import (
    Mapping,
)

from banking.client.errors import BankingError
from banking.client.parsing import JSON


class WebhookVerificationError(BankingError):
    """A webhook's signature is missing, malformed, too old or does not match."""


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance_s: float = 300,
    *,
    now: float | None = None,
) -> JSON:
    """Check a webhook delivery and return its event (the parsed body).

    `headers` are the request's headers (any case); `body` the raw request body, exactly as
    received. The `Banking-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>]`:
    accepted when `t` is within `tolerance_s` of now and one `v1` equals the HMAC-SHA256,
    keyed with `secret`, of `<t>.<body>`. Raises `WebhookVerificationError` otherwise.
    """
    import hashlib
    import hmac
    import json

    raw = body.encode() if isinstance(body, str) else bytes(body)
    header = next(
        (value for name, value in headers.items() if name.lower() == "banking-signature"), None
    )
    if not header:
        raise WebhookVerificationError("no Banking-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError("malformed Banking-Signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("the signature's timestamp is outside the tolerance")
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + raw, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise WebhookVerificationError("no signature matches")
    event: JSON = json.loads(raw)
    return event
