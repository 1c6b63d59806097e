"""Property tests: any valid summaries give finite numbers or None, never NaN, never a crash."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.experiments import ArmSummary, DecisionRules, analyze

METHODS = ["frequentist", "sequential", "msprt", "bayesian"]


@st.composite
def arm(draw: st.DrawFn, name: str, metric: str, kind: str) -> ArmSummary:
    n = draw(st.sampled_from([0, 1, 2, 3, 10, 1000]))
    if kind == "binomial":
        c = draw(st.integers(0, n))
        return ArmSummary(name, metric, n=n, sum=c, sum_sq=c, kind="binomial",
                          pre_sum=draw(st.sampled_from([0, c])), pre_sum_sq=0)  # fmt: skip
    mean = draw(st.sampled_from([0.0, 1e-9, 1.0, -3.0, 1e6]))
    sd = draw(st.sampled_from([0.0, 1e-6, 1.0, 100.0]))
    total = n * mean
    sq = sd * sd * max(n - 1, 0) + (total * total / n if n else 0.0)
    extra = {}
    if kind == "ratio":
        d = draw(st.sampled_from([0.0, 1.0, 5.0]))
        extra = {"denom_sum": n * d, "denom_sum_sq": n * d * d, "num_denom_sum": total * d}
    elif draw(st.booleans()):
        extra = {"pre_sum": total, "pre_sum_sq": sq, "cross_sum": sq}
    return ArmSummary(name, metric, n=n, sum=total, sum_sq=sq, kind=kind, **extra)


@st.composite
def experiment(draw: st.DrawFn) -> list[ArmSummary]:
    out = []
    for m in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["binomial", "continuous", "count", "ratio"]))
        if kind == "count":
            kind = "continuous"
        arms = draw(st.sampled_from([["A", "B"], ["A", "B", "C"]]))
        for a in arms:
            if a != "A" and draw(st.integers(0, 9)) == 0:
                continue  # an arm missing for this metric
            out.append(draw(arm(a, f"m{m}", kind)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    experiment(),
    st.sampled_from(METHODS),
    st.sampled_from(["absolute", "relative"]),
    st.sampled_from(["holm", "bh", "sidak", "none"]),
)
def test_outputs_are_finite_or_none(summaries, method, difference, correction):
    arms = {s.arm for s in summaries}
    if len(arms) < 2 or "A" not in arms:
        return
    res = analyze(summaries, method, difference=difference, correction=correction,
                  control="A", rules=DecisionRules(guardrails={}))  # fmt: skip
    for a in res.arms:
        for name in ("effect_abs", "effect_rel", "std_error", "std_error_rel", "p_value",
                     "p_value_adjusted", "chance_to_win", "expected_loss", "cuped_theta",
                     "mean", "control_mean"):  # fmt: skip
            v = getattr(a, name)
            assert v is None or math.isfinite(v), (name, v, a)
        for ci in (a.ci, a.ci_rel):
            assert ci is None or all(math.isfinite(x) for x in ci), (ci, a)
        if a.p_value is not None:
            assert 0.0 <= a.p_value <= 1.0 and a.p_value <= a.p_value_adjusted + 1e-15
        if a.chance_to_win is not None:
            assert 0.0 <= a.chance_to_win <= 1.0 and a.expected_loss >= 0.0
        if a.effect_abs is None:
            assert a.warnings and not a.significant
        assert isinstance(a.summary, str)
    assert res.decision.action in ("ship", "keep_control", "continue", "invalid")
    assert res.srm_p_value is None or 0.0 <= res.srm_p_value <= 1.0
