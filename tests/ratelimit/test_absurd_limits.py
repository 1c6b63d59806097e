"""Absurd limits are refused when they are built, the same way whatever the backend.

Before: ``Limit(1, 1e30)`` was accepted; it then worked in memory, raised ``OverflowError`` on
SQLite, tripped ``on_backend_error`` on PostgreSQL (a 64-bit overflow) and raised
``ConfigurationError`` on Redis. ``Limit(1, inf)`` raised ``OverflowError``; a 5,000-digit
amount raised ``ValueError``; a ban time of ``inf`` raised ``OverflowError`` on the first ban.
"""

from __future__ import annotations

import math

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.ratelimit import BanPolicy, Limit
from cognitionos.ratelimit.models import MAX_PERIOD

from .conftest import T0

HUGE = 10**5000  # repr() of it raises ValueError on Python >= 3.11: the message must not

ABSURD_LIMITS = [
    pytest.param(lambda: Limit(1, 1e30), "period", id="period-1e30"),
    pytest.param(lambda: Limit(1, math.inf), "period", id="period-inf"),
    pytest.param(lambda: Limit(1, -math.inf), "period", id="period--inf"),
    pytest.param(lambda: Limit(1, math.nan), "period", id="period-nan"),
    pytest.param(lambda: Limit(1, 10**400), "period", id="period-int-10e400"),
    pytest.param(lambda: Limit(HUGE, 60), "amount", id="amount-5000-digits"),
    pytest.param(lambda: Limit(10**13, 60), "amount", id="amount-1e13"),
    pytest.param(lambda: Limit(5, 60, burst=HUGE), "burst", id="burst-5000-digits"),
    pytest.param(lambda: Limit.parse("9" * 5000 + "/second"), "amount", id="parse-amount"),
    pytest.param(lambda: Limit.parse("1 per " + "9" * 5000 + " seconds"), "period", id="parse-mul"),
    pytest.param(lambda: Limit.parse("1 per 1" + "0" * 30 + " seconds"), "period", id="parse-1e30"),
    pytest.param(lambda: Limit.parse("1 per 101 years"), "period", id="parse-101-years"),
]
ABSURD_POLICIES = [
    pytest.param({"ban_time": math.inf}, "ban_time", id="ban_time-inf"),
    pytest.param({"ban_time": 1e30}, "ban_time", id="ban_time-1e30"),
    pytest.param({"find_window": math.nan}, "find_window", id="find_window-nan"),
    pytest.param({"forget_after": math.inf}, "forget_after", id="forget_after-inf"),
    pytest.param({"max_ban_time": -1}, "max_ban_time", id="max_ban_time-negative"),
    pytest.param({"max_ban_time": math.inf}, "max_ban_time", id="max_ban_time-inf"),
    pytest.param({"growth": math.nan}, "growth", id="growth-nan"),
    pytest.param({"growth": math.inf}, "growth", id="growth-inf"),
    pytest.param({"max_violations": HUGE}, "max_violations", id="max_violations-huge"),
]


@pytest.mark.parametrize(("make", "names"), ABSURD_LIMITS)
def test_absurd_limits_are_configuration_errors_naming_the_input(make, names):
    with pytest.raises(ConfigurationError, match=names) as info:
        make()
    assert len(str(info.value)) < 300  # a 5,000-digit input is named, not pasted


@pytest.mark.parametrize(("change", "names"), ABSURD_POLICIES)
def test_absurd_ban_policies_are_configuration_errors(change, names):
    kwargs = {"max_violations": 3, "find_window": 60, "ban_time": 600, **change}
    with pytest.raises(ConfigurationError, match=names):
        BanPolicy(**kwargs)


def test_the_largest_limits_are_accepted():
    assert Limit.parse("1000000000000 per 100 years").period == MAX_PERIOD
    assert Limit(10**12, 1).amount == 10**12
    assert Limit.parse("0005/second").amount == 5


@pytest.mark.parametrize(
    "text", ["9" * 5000 + "/second", "1 per 1" + "0" * 30 + " seconds", "5 per 101 years"]
)
def test_every_backend_refuses_absurd_rate_strings_without_a_backend_error(limiter_factory, text):
    limiter = limiter_factory("fixed_window", on_backend_error="open")
    with pytest.raises(ConfigurationError):
        limiter.hit(text, "k")
    for seconds in (math.inf, math.nan, 1e30, -1):
        with pytest.raises(ConfigurationError, match="ban duration"):
            limiter.ban("k", seconds)
    assert limiter.counters.snapshot()["backend_errors"] == 0
    assert limiter.hit("5/second", "k").allowed  # and the limiter is fine
    limiter.close()


def test_ban_growth_beyond_any_double_is_capped_alike_on_every_backend(limiter_factory):
    """growth**offenses past the largest double: a 100-year ban, not OverflowError or inf."""
    clock = ManualClock(T0)
    policy = BanPolicy(max_violations=1, find_window=60, ban_time=1000, growth=1e308)
    limiter = limiter_factory("fixed_window", clock=clock, ban_policy=policy)
    one = Limit(amount=1, period=60)
    assert limiter.hit(one, "k").allowed
    assert not limiter.hit(one, "k").allowed  # first offense: 1000 s
    [ban] = limiter.bans()
    assert (ban.remaining, ban.offenses) == (1000, 1)
    clock.advance(1001)
    assert limiter.hit(one, "k").allowed
    assert not limiter.hit(one, "k").allowed  # second: 1000 s x 1e308 overflows a double
    [ban] = limiter.bans()
    assert (ban.remaining, ban.offenses) == (MAX_PERIOD, 2)
    assert limiter.hit(one, "k").banned
    limiter.close()
