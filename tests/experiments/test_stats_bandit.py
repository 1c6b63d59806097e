"""Thompson-sampling weights, period-weighted bandit analysis and regret."""

from __future__ import annotations

import pytest
from scipy import integrate, stats

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ArmSummary, BanditPeriod, bandit_report, thompson_weights


def conv(arm: str, n: int, c: int) -> ArmSummary:
    return ArmSummary(arm, "cv", n=n, sum=c, sum_sq=c, kind="binomial")


def test_thompson_weights_are_the_probability_of_being_best():
    w = thompson_weights([conv("A", 200, 20), conv("B", 200, 28)], draws=200_000, seed=1)
    # exact P(p_B > p_A) for Beta(29, 173) vs Beta(21, 181), by quadrature
    fa, fb = stats.beta(21, 181), stats.beta(29, 173)
    exact, _ = integrate.quad(lambda x: fb.pdf(x) * fa.cdf(x), 0, 1, limit=200)
    assert w["B"] == pytest.approx(exact, abs=4 * (exact * (1 - exact) / 200_000) ** 0.5)
    assert w["A"] + w["B"] == pytest.approx(1.0)


def test_thompson_weights_floor_and_inverse():
    s = [conv("A", 5000, 500), conv("B", 5000, 700), conv("C", 5000, 400)]
    w = thompson_weights(s, seed=0, min_weight=0.05)
    assert w["B"] == pytest.approx(0.9) and w["A"] == pytest.approx(0.05)
    low = thompson_weights(s, seed=0, inverse=True)
    assert low["C"] > 0.99


def test_continuous_thompson_weights():
    def cont(arm: str, n: int, mean: float, sd: float) -> ArmSummary:
        total = n * mean
        return ArmSummary(arm, "rev", n=n, sum=total, sum_sq=sd * sd * (n - 1) + total * total / n)

    w = thompson_weights([cont("A", 400, 10.0, 5.0), cont("B", 400, 10.5, 5.0)],
                         draws=200_000, seed=3)  # fmt: skip
    exact = stats.norm.cdf(0.5 / (5.0 * (2 / 400) ** 0.5))
    assert w["B"] == pytest.approx(exact, abs=0.005)


def test_period_weighting_removes_the_simpson_bias():
    # the conversion rate doubles in period 2, when the bandit sends B most of the traffic;
    # A and B are truly equal in both periods
    periods = [
        BanditPeriod({"A": 0.5, "B": 0.5}, [conv("A", 10_000, 1_000), conv("B", 10_000, 1_000)]),
        BanditPeriod({"A": 0.1, "B": 0.9}, [conv("A", 2_000, 400), conv("B", 18_000, 3_600)]),
    ]
    rep = bandit_report(periods, seed=0)
    # naive pooling: A = 1400/12000, B = 4600/28000 -> B looks 41 % better
    assert rep.naive_means["A"] == pytest.approx(1400 / 12000)
    assert rep.naive_means["B"] == pytest.approx(4600 / 28000)
    # period weights 20000/40000 and 20000/40000: both arms 0.5 * 0.1 + 0.5 * 0.2 = 0.15
    assert rep.means["A"] == pytest.approx(0.15)
    assert rep.means["B"] == pytest.approx(0.15)
    assert rep.regret == pytest.approx(0.0, abs=1e-9)
    assert 0.3 < rep.best_probability["B"] < 0.7


def test_regret_by_hand():
    periods = [
        BanditPeriod({"A": 0.5, "B": 0.5}, [conv("A", 1000, 100), conv("B", 1000, 150)]),
        BanditPeriod({"A": 0.2, "B": 0.8}, [conv("A", 400, 40), conv("B", 1600, 240)]),
    ]
    rep = bandit_report(periods, seed=0)
    assert rep.best_arm == "B"
    # means 0.10 and 0.15 in both periods; regret = units on A x 0.05
    assert rep.regret_per_period == pytest.approx((50.0, 20.0))
    assert rep.regret == pytest.approx(70.0)
    assert rep.next_weights["B"] > 0.99


@pytest.mark.parametrize(
    "periods",
    [
        [],
        [BanditPeriod({"A": 1}, [conv("A", 10, 1), conv("B", 10, 1)])],
        [BanditPeriod({"A": 1, "B": -1}, [conv("A", 10, 1), conv("B", 10, 1)])],
        [BanditPeriod({"A": 1, "B": 1}, [conv("A", 10, 1), conv("A", 10, 1)])],
        [BanditPeriod({"A": 1, "B": 1}, [conv("A", 0, 0), conv("B", 10, 1)])],
    ],
)
def test_bad_bandit_logs_raise(periods):
    with pytest.raises(ConfigurationError):
        bandit_report(periods)
