"""Group-sequential boundaries against published tables and a simulation of their error rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import group_sequential_bounds

# Jennison & Turnbull (2000), tables 2.1 and 2.3: two-sided alpha = 0.05, equal spacing
POCOCK = {2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413, 10: 2.555}
OBRIEN_FLEMING = {2: 1.977, 3: 2.004, 4: 2.024, 5: 2.040, 10: 2.087}


@pytest.mark.parametrize("looks", sorted(POCOCK))
def test_pocock_constants(looks):
    design = group_sequential_bounds(looks, 0.05, "pocock")
    assert design.bounds == pytest.approx([POCOCK[looks]] * looks, abs=1.5e-3)
    assert design.cumulative_alpha[-1] == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("looks", sorted(OBRIEN_FLEMING))
def test_obrien_fleming_constants(looks):
    design = group_sequential_bounds(looks, 0.05, "obrien-fleming")
    expected = [OBRIEN_FLEMING[looks] * (looks / k) ** 0.5 for k in range(1, looks + 1)]
    assert design.bounds == pytest.approx(expected, abs=1.5e-3 * looks**0.5)


def test_lan_demets_spending_bounds():
    # O'Brien-Fleming-type spending, 5 equal looks, two-sided 0.05 (gsDesign / ldbounds)
    obf = group_sequential_bounds(5, 0.05, "spending", spending="obrien-fleming")
    assert obf.bounds == pytest.approx([4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-4)
    # Pocock-type spending (ldbounds iuse=2)
    poc = group_sequential_bounds(5, 0.05, "spending", spending="pocock")
    assert poc.bounds == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=1.5e-3)
    # power spending alpha t^rho: the cumulative alpha follows the function exactly
    pw = group_sequential_bounds(4, 0.05, "spending", spending="power", rho=2.0)
    assert pw.cumulative_alpha == pytest.approx([0.05 * (k / 4) ** 2 for k in range(1, 5)])


def test_boundaries_hold_alpha_in_simulation():
    rng = np.random.default_rng(2)
    reps, looks = 40_000, 5
    # z statistics of a Brownian motion observed at equal information fractions
    increments = rng.standard_normal((reps, looks))
    z = np.cumsum(increments, axis=1) / np.sqrt(np.arange(1, looks + 1))
    for kind in ("pocock", "obrien-fleming"):
        bounds = np.array(group_sequential_bounds(looks, 0.05, kind).bounds)
        rate = np.mean(np.any(np.abs(z) >= bounds, axis=1))
        assert abs(rate - 0.05) < 4 * (0.05 * 0.95 / reps) ** 0.5, (kind, rate)
    naive = np.mean(np.any(np.abs(z) >= 1.959964, axis=1))
    assert naive == pytest.approx(0.142, abs=0.01)


def test_unequal_information_and_crossing():
    design = group_sequential_bounds(3, 0.05, "spending", information=[0.2, 0.5, 1.0])
    assert design.information == (0.2, 0.5, 1.0)
    assert design.crossed(5.0, 1) and not design.crossed(2.5, 1)
    assert design.nominal_alpha[-1] == pytest.approx(2 * stats.norm.sf(design.bounds[-1]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"looks": 0},
        {"alpha": 1.0},
        {"kind": "haybittle"},
        {"kind": "spending", "spending": "linear"},
        {"information": [0.5, 0.4, 1.0], "looks": 3},
        {"information": [0.5, 0.9], "looks": 2},
        {"rho": -1.0},
    ],
)
def test_bad_designs_raise(kwargs):
    with pytest.raises(ConfigurationError):
        group_sequential_bounds(**kwargs)
