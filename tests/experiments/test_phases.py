"""Phases: the weight/coverage history of a running experiment and SRM checked per phase.

Expected chi-squared p-values come from ``scipy.stats.chisquare`` on counts built by hand.
"""

from __future__ import annotations

import uuid

import pytest
from scipy import stats

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import (
    ArmSummary,
    BanditPeriod,
    ExperimentEngine,
    PhaseUnits,
    analyze,
    bandit_periods,
    bandit_report,
)
from cognitionos.experiments.models import parse_experiment


@pytest.fixture
def engine(store, clock):
    eng = ExperimentEngine(store=store, clock=clock)
    yield eng
    eng.close()


@pytest.fixture
def key(engine):
    k = f"phase-{uuid.uuid4().hex[:10]}"
    engine.create({"key": k, "arms": [{"key": "control"}, {"key": "treatment"}]})
    yield k
    engine.delete(k)


def _conv(arm: str, n: int) -> ArmSummary:
    return ArmSummary(arm, "m", n=n, sum=n / 10, sum_sq=n / 10, kind="binomial")


def _expose(engine, key, arm, count, prefix):
    engine.track_exposures(key, [(f"{prefix}-{i}", arm) for i in range(count)])


def test_phases_follow_start_and_weight_changes_and_count_units(engine, key, clock):
    assert engine.get(key).phases == []  # a draft has no phase yet
    engine.start(key)
    start0 = clock.time()
    _expose(engine, key, "control", 520, "a")
    _expose(engine, key, "treatment", 480, "b")
    clock.advance(3600)
    engine.update(key, {"arms": [{"key": "control", "weight": 0.2},
                                 {"key": "treatment", "weight": 0.8}]})  # fmt: skip
    _expose(engine, key, "control", 150, "c")
    _expose(engine, key, "treatment", 850, "d")
    # a repeat exposure of a phase-0 unit to the other arm: not counted again anywhere
    engine.track_exposures(key, [("a-1", "treatment")])
    clock.advance(60)
    engine.update(key, {"description": "no change of split: no new phase"})
    engine.update(key, {"coverage": 0.5})

    exp = engine.get(key)
    assert [p.weights for p in exp.phases] == [
        {"control": 0.5, "treatment": 0.5},
        {"control": 0.2, "treatment": 0.8},
        {"control": 0.2, "treatment": 0.8},
    ]
    assert [p.coverage for p in exp.phases] == [1.0, 1.0, 0.5]
    assert [p.start for p in exp.phases] == pytest.approx([start0, start0 + 3600, start0 + 3660])

    phases = engine.phase_units(key)
    assert [p.units for p in phases] == [
        {"control": 520, "treatment": 480},
        {"control": 150, "treatment": 850},
        {"control": 0, "treatment": 0},
    ]
    report = engine.exposure_report(key)
    assert report["units"] == {"control": 670, "treatment": 1330}
    assert report["multiple_exposures"] == 1
    assert [p["units"] for p in report["phases"]] == [p.units for p in phases]

    # the history survives an update that tries to rewrite it
    engine.update(key, {"phases": []})
    assert len(engine.get(key).phases) == 3

    # SRM per phase against that phase's weights; pooled equal weights would be wrong
    summaries = [_conv("control", 670), _conv("treatment", 1330)]
    res = analyze(summaries, phases=phases, weights={"control": 0.5, "treatment": 0.5})
    p0 = stats.chisquare([520, 480], [500, 500]).pvalue
    p1 = stats.chisquare([150, 850], [200, 800]).pvalue
    assert [p.p_value for p in res.srm_phases[:2]] == pytest.approx([p0, p1], rel=1e-9)
    assert res.srm_phases[2].p_value is None  # 0 units: below the minimum-N gate
    assert res.srm_p_value == pytest.approx(min(p0, p1), rel=1e-9)
    assert res.srm_detected is bool(min(p0, p1) < 0.001)
    assert res.to_dict()["srm_phases"][1]["units"] == {"control": 150, "treatment": 850}


def test_phase_srm_flags_the_mismatched_phase_only():
    summaries = [_conv("A", 3000), _conv("B", 3000)]
    phases = [
        PhaseUnits({"A": 0.5, "B": 0.5}, {"A": 1000, "B": 1000}, start=0.0),
        PhaseUnits({"A": 0.5, "B": 0.5}, {"A": 1000, "B": 1100}, start=10.0),
        PhaseUnits({"A": 0.25, "B": 0.75}, {"A": 30, "B": 60}, start=20.0),  # below the gate
    ]
    res = analyze(summaries, phases=phases, srm_threshold=0.05)
    expected = stats.chisquare([1000, 1100], [1050, 1050]).pvalue  # ~0.029, textbook
    assert res.srm_phases[0].p_value == pytest.approx(1.0)
    assert res.srm_phases[1].p_value == pytest.approx(expected, rel=1e-9)
    assert res.srm_phases[2].p_value is None
    assert res.srm_p_value == pytest.approx(expected, rel=1e-9)
    assert res.srm_detected and res.decision.action == "invalid"
    assert "worst of 3 phases" in res.summary


def test_phase_with_units_in_an_unweighted_arm_is_a_mismatch():
    summaries = [ArmSummary(a, "m", n=500, sum=5.0, sum_sq=50.0) for a in "ABC"]
    phases = [PhaseUnits({"A": 0.5, "B": 0.5}, {"A": 250, "B": 240, "C": 10})]
    assert analyze(summaries, phases=phases).srm_phases[0].p_value == 0.0
    three = [PhaseUnits({"A": 0.2, "B": 0.3, "C": 0.5}, {"A": 200, "B": 310, "C": 490})]
    expected = stats.chisquare([200, 310, 490], [200, 300, 500]).pvalue
    assert analyze(summaries, phases=three).srm_phases[0].p_value == pytest.approx(expected)


def test_bad_phases_are_refused():
    summaries = [ArmSummary(a, "m", n=500, sum=5.0, sum_sq=50.0) for a in "AB"]
    with pytest.raises(ConfigurationError, match="unknown arms"):
        analyze(summaries, phases=[PhaseUnits({"A": 0.5, "Z": 0.5}, {"A": 1})])
    with pytest.raises(ConfigurationError, match="non-negative integers"):
        analyze(summaries, phases=[PhaseUnits({"A": 0.5, "B": 0.5}, {"A": -1})])
    with pytest.raises(ConfigurationError, match="PhaseUnits"):
        analyze(summaries, phases=[{"A": 0.5}])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="phase 1 starts before phase 0"):
        parse_experiment({
            "key": "x", "arms": [{"key": "a"}, {"key": "b"}],
            "phases": [{"start": 10, "weights": {"a": 0.5, "b": 0.5}},
                       {"start": 5, "weights": {"a": 0.5, "b": 0.5}}],
        })  # fmt: skip


def test_bandit_periods_take_their_weights_from_the_phase_log(engine, key):
    engine.start(key)
    engine.update(key, {"arms": [{"key": "control", "weight": 0.3},
                                 {"key": "treatment", "weight": 0.7}]})  # fmt: skip
    per_phase = [
        [ArmSummary("control", "r", n=100, sum=10.0, sum_sq=10.0, kind="binomial"),
         ArmSummary("treatment", "r", n=100, sum=12.0, sum_sq=12.0, kind="binomial")],
        [ArmSummary("control", "r", n=60, sum=3.0, sum_sq=3.0, kind="binomial"),
         ArmSummary("treatment", "r", n=140, sum=9.0, sum_sq=9.0, kind="binomial")],
    ]  # fmt: skip
    periods = bandit_periods(engine.get(key), per_phase)
    assert periods == [
        BanditPeriod({"control": 0.5, "treatment": 0.5}, per_phase[0]),
        BanditPeriod({"control": 0.3, "treatment": 0.7}, per_phase[1]),
    ]
    report = bandit_report(periods, seed=1)
    # period-weighted means (each period's share of all units: 200/400 each)
    assert report.means["control"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.05)
    assert report.means["treatment"] == pytest.approx(0.5 * 0.12 + 0.5 * 9 / 140)
    with pytest.raises(ConfigurationError, match="2 phases"):
        bandit_periods(engine.get(key), per_phase[:1])
