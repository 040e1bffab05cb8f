"""Where webhooks may be sent: https, and never to the bank's own network.

In production an endpoint's URL must be https and its host must resolve only to public
addresses (no private, loopback, link-local, multicast, reserved or unspecified ones).
This is checked when the endpoint is registered or changed, and again before every
delivery, whose connection then goes to the very address that was checked (so a DNS
answer that changes in between, "DNS rebinding", cannot point it inside).
`WEBHOOK_ALLOW_PRIVATE=true` lifts both rules (development and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from banking.core.errors import InvalidRequest


class UnsafeWebhookUrl(InvalidRequest):
    code = "webhook_url_not_allowed"
    title = "Webhook URLs must be https and must not point to a private network."


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for one delivery: the URL with the host replaced by the checked
    address, and the host name for the Host header and TLS (SNI, certificate)."""

    url: str
    host: str
    address: str


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_syntax(url: str, *, allow_private: bool) -> None:
    try:
        parts = urlsplit(url)
        # Raises ValueError for a port that is not a number in 0-65535.
        parts.port  # noqa: B018
    except ValueError as exc:
        raise UnsafeWebhookUrl("The URL cannot be parsed.") from exc
    if not url.isascii() or any(character.isspace() for character in url):
        raise UnsafeWebhookUrl("The URL must be ASCII without spaces (xn-- host names).")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeWebhookUrl("The URL must be an absolute http(s) URL.")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeWebhookUrl("The URL must use https.")
    if parts.username or parts.password:
        raise UnsafeWebhookUrl("The URL must not carry credentials.")


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Check `url` and pick the address to connect to; raises `UnsafeWebhookUrl`."""
    check_syntax(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"The host {host!r} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeWebhookUrl(f"The host {host!r} does not resolve.")
    if not allow_private and not all(_public(address) for address in addresses):
        raise UnsafeWebhookUrl("The URL's host resolves to a private or reserved address.")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(url=target_url, host=parts.netloc.rsplit("@", 1)[-1], address=address)
