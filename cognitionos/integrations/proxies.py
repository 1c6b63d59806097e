"""Client identity behind reverse proxies.

A forwarded header is only as trustworthy as the hop that added it. The peer
of the TCP connection is the client unless it is a trusted proxy; then the
forwarded chain is walked from the right (the hop nearest to us), skipping
trusted proxies, and the first untrusted address is the client. Anything a
client wrote into the header itself sits further left and is never reached
unless every hop to its right is trusted.

    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    proxies.client_ip("10.1.2.3", forwarded_for="198.51.100.7, 10.0.0.9")   # "198.51.100.7"
    proxies.client_ip("203.0.113.5", forwarded_for="1.2.3.4")               # "203.0.113.5"
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from cognitionos.errors import ConfigurationError

__all__ = ["TrustedProxies", "parse_ip"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str | None) -> _Address | None:
    """Parse an address as it appears in peers and forwarded headers, or None if it is not one.

    Accepts ``[v6]:port``, ``v4:port``, quoted values and IPv4-mapped IPv6 (returned as IPv4).
    """
    if not text:
        return None
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]  # IPv4 with a port
    value = value.split("%", 1)[0]  # IPv6 zone id
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _forwarded_for(header: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, in order."""
    found = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found.append(value.strip())
    return found


class TrustedProxies:
    """Decide the client address from the peer and forwarded headers.

    ``networks`` are the proxies you run (CIDRs or single addresses); an empty
    list (the default) trusts no one, so forwarded headers are ignored.
    ``ipv6_prefix=64`` reports IPv6 clients as their /64 network, since one
    subscriber usually owns a whole /64 and could rotate through it.
    """

    __slots__ = ("ipv6_prefix", "networks")

    def __init__(self, networks: Iterable[str] = (), *, ipv6_prefix: int | None = None) -> None:
        parsed: list[_Network] = []
        for net in networks:
            try:
                parsed.append(ipaddress.ip_network(net.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted proxy {net!r} is not an IP address or CIDR: {exc}"
                ) from None
        if ipv6_prefix is not None and not 1 <= ipv6_prefix <= 128:
            raise ConfigurationError(f"ipv6_prefix must be 1..128, got {ipv6_prefix}")
        self.networks: tuple[_Network, ...] = tuple(parsed)
        self.ipv6_prefix = ipv6_prefix

    def is_trusted(self, addr: _Address) -> bool:
        """True if ``addr`` is one of the configured proxies."""
        return any(addr.version == net.version and addr in net for net in self.networks)

    def client_ip(
        self,
        peer: str | None,
        *,
        forwarded_for: str | None = None,
        forwarded: str | None = None,
    ) -> str:
        """The client address as a string (or its IPv6 network when aggregating).

        ``peer`` is the TCP peer address; ``forwarded_for`` the ``X-Forwarded-For``
        header and ``forwarded`` the RFC 7239 ``Forwarded`` header (used when there is no
        ``X-Forwarded-For``). Unparseable peers yield ``"unknown"``.
        """
        addr = parse_ip(peer)
        if addr is None:
            return "unknown"
        if self.networks and self.is_trusted(addr):
            if forwarded_for:
                chain = [part for part in forwarded_for.split(",") if part.strip()]
            elif forwarded:
                chain = _forwarded_for(forwarded)
            else:
                chain = []
            for hop in reversed(chain):
                hop_addr = parse_ip(hop)
                if hop_addr is None:
                    break  # garbage in the chain: stop at the last address we could trust
                addr = hop_addr
                if not self.is_trusted(hop_addr):
                    break
        return self._render(addr)

    def _render(self, addr: _Address) -> str:
        if self.ipv6_prefix is not None and isinstance(addr, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((addr, self.ipv6_prefix), strict=False))
        return str(addr)

    def __repr__(self) -> str:
        nets = ", ".join(str(n) for n in self.networks)
        return f"TrustedProxies([{nets}], ipv6_prefix={self.ipv6_prefix})"
