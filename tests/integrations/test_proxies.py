"""Client identity behind trusted proxies."""

from __future__ import annotations

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.integrations import TrustedProxies
from cognitionos.integrations.proxies import parse_ip


def test_no_trusted_proxies_ignores_forwarded_headers():
    proxies = TrustedProxies()
    assert proxies.client_ip("203.0.113.5", forwarded_for="1.2.3.4") == "203.0.113.5"


def test_untrusted_peer_cannot_spoof():
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client_ip("198.51.100.1", forwarded_for="10.0.0.1, 1.2.3.4") == "198.51.100.1"


def test_rightmost_untrusted_hop_is_the_client():
    proxies = TrustedProxies(["10.0.0.0/8", "192.168.1.1"])
    # the client wrote "6.6.6.6" itself; our proxies appended the real hops to the right
    chain = "6.6.6.6, 198.51.100.7, 192.168.1.1"
    assert proxies.client_ip("10.1.2.3", forwarded_for=chain) == "198.51.100.7"


def test_all_hops_trusted_yields_leftmost():
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client_ip("10.0.0.1", forwarded_for="10.0.0.2, 10.0.0.3") == "10.0.0.2"


def test_garbage_hop_stops_the_walk():
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client_ip("10.0.0.1", forwarded_for="1.2.3.4, not-an-ip, 10.0.0.2") == "10.0.0.2"


def test_rfc7239_forwarded_header():
    proxies = TrustedProxies(["10.0.0.0/8"])
    header = 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'
    assert proxies.client_ip("10.0.0.1", forwarded=header) == "2001:db8:cafe::17"
    # X-Forwarded-For wins when both are present
    assert (
        proxies.client_ip("10.0.0.1", forwarded=header, forwarded_for="198.51.100.1")
        == "198.51.100.1"
    )


def test_ipv6_aggregation_to_64():
    proxies = TrustedProxies(ipv6_prefix=64)
    assert proxies.client_ip("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert proxies.client_ip("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert proxies.client_ip("203.0.113.5") == "203.0.113.5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5:443", "203.0.113.5"),
        ("[2001:db8::1]:8080", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ('"192.0.2.9"', "192.0.2.9"),
        ("fe80::1%eth0", "fe80::1"),
        ("unix:/tmp/sock", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_ip_forms(text, expected):
    parsed = parse_ip(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_unknown_peer():
    assert TrustedProxies().client_ip(None) == "unknown"


def test_bad_configuration():
    with pytest.raises(ConfigurationError, match="not-a-cidr"):
        TrustedProxies(["not-a-cidr"])
    with pytest.raises(ConfigurationError, match="ipv6_prefix"):
        TrustedProxies(ipv6_prefix=0)
