"""Auto-blacklist: k blocked requests within W seconds ban the client for D seconds."""

from __future__ import annotations

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall, Request

ATTACK = "/?q=%27%20or%201%3D1--"


def req(ip="198.51.100.7", target=ATTACK, ua="curl/8"):
    return Request.from_raw(
        "GET", target, headers=[("Host", "h"), ("Accept", "*/*"), ("User-Agent", ua)], client_ip=ip
    )


@pytest.fixture
def clock():
    return ManualClock(start=1_700_000_000)


@pytest.fixture
def blacklist(clock):
    return AutoBlacklist(
        open_store("memory://", clock=clock), threshold=3, window=60, ban_seconds=600, clock=clock
    )


def offend(bl, fw, request, times):
    ban = None
    for _ in range(times):
        ban = bl.record(request, fw.inspect(request)) or ban
    return ban


def test_k_blocked_requests_ban_the_client(blacklist):
    fw = Firewall()
    assert offend(blacklist, fw, req(), 2) is None
    assert blacklist.is_banned(req()) is None
    ban = offend(blacklist, fw, req(), 1)
    assert ban is not None and ban.client == "198.51.100.7"
    assert blacklist.is_banned(req(target="/harmless")) is not None  # banned for every request


def test_ban_expires_after_d_seconds(blacklist, clock):
    offend(blacklist, Firewall(), req(), 3)
    clock.advance(599)
    assert blacklist.is_banned(req()) is not None
    clock.advance(2)
    assert blacklist.is_banned(req()) is None


def test_window_resets_the_count(blacklist, clock):
    fw = Firewall()
    offend(blacklist, fw, req(), 2)
    clock.advance(61)  # the first two fall out of the window
    assert offend(blacklist, fw, req(), 2) is None
    assert blacklist.is_banned(req()) is None


def test_clean_requests_do_not_count(blacklist):
    fw = Firewall()
    assert offend(blacklist, fw, req(target="/?q=hello"), 10) is None


def test_allow_list_is_never_banned(clock):
    bl = AutoBlacklist(
        open_store("memory://", clock=clock), threshold=1, allow=["10.0.0.0/8"], clock=clock
    )
    offend(bl, Firewall(), req(ip="10.1.2.3"), 5)
    assert bl.is_banned(req(ip="10.1.2.3")) is None
    with pytest.raises(ConfigurationError):
        bl.ban("10.1.2.3")


def test_nat_friendly_mode_separates_user_agents(clock):
    bl = AutoBlacklist(open_store("memory://", clock=clock), threshold=2, by="ip+ua", clock=clock)
    offend(bl, Firewall(), req(ua="sqlmap-ish/1.0"), 2)
    assert bl.is_banned(req(ua="sqlmap-ish/1.0")) is not None
    assert bl.is_banned(req(ua="Mozilla/5.0 (colleague behind the same NAT)")) is None


def test_manual_ban_unban_and_listing(blacklist, clock):
    ban = blacklist.ban("203.0.113.5", seconds=30, reason="abuse report")
    assert ban.remaining(clock.time_ns()) == pytest.approx(30)
    assert [b.client for b in blacklist.bans()] == ["203.0.113.5"]
    assert blacklist.bans()[0].reason == "abuse report"
    assert blacklist.unban("203.0.113.5") is True
    assert blacklist.unban("203.0.113.5") is False
    assert blacklist.bans() == []


def test_permanent_ban(blacklist, clock):
    blacklist.ban("2001:db8::1", permanent=True)
    clock.advance(10**7)
    banned = blacklist.is_banned(req(ip="2001:db8:0:0::1"))  # same address, other spelling
    assert banned is not None and banned.until_ns is None


def test_detect_only_verdicts_count_by_default(blacklist):
    fw = Firewall(mode="detect")
    assert offend(blacklist, fw, req(), 3) is not None


def test_unknown_ip_is_ignored(blacklist):
    assert offend(blacklist, Firewall(), req(ip=None), 5) is None
    assert blacklist.client_key("not-an-ip") is None


def test_invalid_configuration(clock):
    store = open_store("memory://", clock=clock)
    with pytest.raises(ConfigurationError):
        AutoBlacklist(store, threshold=0)
    with pytest.raises(ConfigurationError):
        AutoBlacklist(store, by="cookie")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        AutoBlacklist(store, allow=["not-a-network"])


def test_bans_are_shared_through_the_store(clock):
    store = open_store("memory://", clock=clock)
    host_a = AutoBlacklist(store, threshold=2, clock=clock)
    host_b = AutoBlacklist(store, threshold=2, clock=clock)
    fw = Firewall()
    host_a.record(req(), fw.inspect(req()))
    host_b.record(req(), fw.inspect(req()))  # the second strike lands on another host
    assert host_a.is_banned(req()) is not None
