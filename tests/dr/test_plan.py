"""plan_recovery: hand-derived schedules, infeasibility reasons, property and Monte-Carlo checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.dr import plan_recovery
from cognitionos.errors import ConfigurationError


def test_hand_derived_backup_restore_schedule():
    # 100 GB, 1 MB/s of changes, backups at 100 MB/s, restores at 200 MB/s
    plan = plan_recovery(
        size_bytes=100e9,
        change_rate=1e6,
        backup_throughput=100e6,
        restore_throughput=200e6,
        rpo=900,
        rto=3600,
        detection_time=60,
        provisioning_time=300,
        dns_time=60,
    )
    t = plan.chosen
    assert t is not None and t.tier == "backup-restore"
    # I + I * 1/100 = 900  ->  I = 900 / 1.01
    assert t.incremental_interval == pytest.approx(900 / 1.01)
    assert t.rpo == pytest.approx(900)
    # slack = 3600 - (60 + 300 + 500 + 60) = 2680 s; replay at 200 MB/s of 1 MB/s changes:
    # F = 2680 * 200 = 536,000 s (6.2 days, under the 7-day cap)
    assert t.full_interval == pytest.approx(536_000)
    assert t.rto == pytest.approx(3600)


def test_infeasible_targets_name_the_inequality():
    plan = plan_recovery(
        size_bytes=10e12,
        change_rate=1e6,
        backup_throughput=100e6,
        restore_throughput=100e6,
        rpo=900,
        rto=3600,
        replication_lag=2,
        detection_time=60,
        promotion_time=30,
        dns_time=60,
    )
    br = plan.tiers[0]
    assert not br.feasible
    # 10 TB at 100 MB/s is a 100,000 s restore
    assert any("full restore 100000" in r and "> rto 3600" in r for r in br.reasons)
    assert plan.chosen is not None and plan.chosen.tier == "warm-standby"
    assert plan.chosen.rto == 60 + 30 + 60
    nothing = plan_recovery(
        size_bytes=1e9,
        change_rate=1e6,
        backup_throughput=1e8,
        restore_throughput=1e8,
        rpo=1,
        rto=10,
        replication_lag=5,
    )
    assert nothing.chosen is None
    assert any("replication_lag 5 s > rpo 1 s" in r for r in nothing.tiers[3].reasons)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"backup_throughput": 0}, "backup_throughput"),
        ({"restore_throughput": -5}, "restore_throughput"),
        ({"rpo": 0}, "rpo"),
        ({"detection_time": -1}, "detection_time"),
    ],
)
def test_bad_input(kwargs, needle):
    base = {
        "size_bytes": 1e9,
        "change_rate": 1e5,
        "backup_throughput": 1e8,
        "restore_throughput": 1e8,
    }
    base.update(kwargs)
    with pytest.raises(ConfigurationError, match=needle):
        plan_recovery(**base)


inputs = st.fixed_dictionaries(
    {
        "size_bytes": st.floats(1e6, 1e12),
        "change_rate": st.floats(1e3, 5e7),
        "backup_throughput": st.floats(1e7, 1e9),
        "restore_throughput": st.floats(1e7, 1e9),
        "rpo": st.floats(60, 86400),
        "rto": st.floats(600, 86400),
    }
)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_emitted_schedules_meet_their_targets(kw):
    plan = plan_recovery(**kw)
    for t in plan.tiers:
        if t.feasible:
            assert t.rpo <= kw["rpo"] * (1 + 1e-9)
            assert t.rto <= kw["rto"] * (1 + 1e-9)
        else:
            assert t.reasons


@settings(max_examples=25, deadline=None)
@given(inputs)
def test_monte_carlo_confirms_the_worst_case_rpo(kw):
    np = pytest.importorskip("numpy")
    plan = plan_recovery(**kw)
    br = plan.tiers[0]
    if not br.feasible:
        return
    interval = br.incremental_interval
    duration = kw["change_rate"] * interval / kw["backup_throughput"]
    rng = np.random.default_rng(0)
    failures = rng.uniform(duration, 1000 * interval, 20_000)
    # the newest backup finished before the failure started at k * interval
    k = np.floor((failures - duration) / interval)
    loss = failures - k * interval
    assert loss.max() <= br.rpo * (1 + 1e-9)
    assert loss.max() >= br.rpo * 0.99
