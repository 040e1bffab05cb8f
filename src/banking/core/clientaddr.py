"""The client's address, from the peer or from `X-Forwarded-For` behind trusted proxies.

`TRUSTED_PROXIES` is a comma-separated list of addresses and CIDR networks (`*`, trust
every peer, is refused in production). When the peer is trusted, `X-Forwarded-For` is
read from the right: each entry that is itself a trusted proxy is skipped, and the first
one that is not is the client. An entry that does not parse as an IP address ends the
walk and the peer address is used instead, so a client can never choose the text that
lands in logs, audit rows, sessions and rate-limit keys: every address the service keeps
is a normalized IPv4 or IPv6 address (at most 45 characters; a zone id is dropped).
`tests/integration/test_client_address.py` checks each rule.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A chain longer than this is not a chain of our proxies.
MAX_HOPS = 16
# The longest text of an IP address in any form we accept ("[v6]:port" included).
MAX_ENTRY_CHARS = 64


def parse_proxies(spec: str) -> tuple[bool, tuple[IPNetwork, ...]]:
    """(`trust_all`, networks) from a `TRUSTED_PROXIES` value; ValueError names a bad entry."""
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    if "*" in entries:
        return True, ()
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR network: {entry!r}") from exc
    return False, tuple(networks)


@lru_cache(maxsize=4096)
def parse_address(text: str) -> IPAddress | None:
    """An IP address from a header entry or a peer (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`,
    `fe80::1%eth0`); None when it is not one."""
    text = text.strip()
    if not text or len(text) > MAX_ENTRY_CHARS:
        return None
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    text = text.partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        self.trust_all, self.networks = parse_proxies(spec)

    def trusts(self, address: IPAddress) -> bool:
        return self.trust_all or any(address in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The normalized client address, or None when there is no peer address."""
        peer_address = parse_address(peer) if peer else None
        if peer_address is None:
            return None
        if not forwarded_for or not self.trusts(peer_address):
            return str(peer_address)
        hops = forwarded_for.rsplit(",", MAX_HOPS)[-MAX_HOPS:]
        nearest = peer_address
        for entry in reversed(hops):
            address = parse_address(entry)
            if address is None:
                return str(peer_address)
            if not self.trusts(address):
                return str(address)
            nearest = address
        # Every hop was a trusted proxy (or the chain was too long to walk).
        return str(nearest) if len(hops) < MAX_HOPS else str(peer_address)
