"""The shortcuts in ``analyze`` give the same answers as the full computations they skip.

- pre-period balance: the Welch t-test runs only where the normal p-value is already below
  the threshold (Student's t has heavier tails); compared with the test on every cell;
- sequential p-value: the closed form with tau^2 = rho^2 N V is compared with the general
  mixture SPRT likelihood ratio evaluated at that tau^2.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as special
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.experiments import _kernels as K
from cognitionos.experiments._analysis import _pre_imbalanced, _pre_imbalanced_full


@settings(max_examples=200, deadline=None)
@given(
    n=st.lists(st.integers(2, 60), min_size=3, max_size=3),
    var=st.lists(st.floats(1e-3, 1e3), min_size=3, max_size=3),
    # z around the normal quantile of the threshold, where the shortcut decides
    dz=st.lists(st.floats(-1.0, 3.0), min_size=2, max_size=2),
    threshold=st.sampled_from([0.001, 0.01, 0.05]),
)
def test_pre_period_shortcut_matches_full_test(n, var, dz, threshold):
    na = np.array([[float(n[0])]])
    nb = np.array([[float(n[1]), float(n[2])]])
    pre_var = np.array([var])
    z0 = -special.ndtri(threshold / 2)
    z = np.array([[z0 + dz[0], z0 + dz[1]]])
    fast = _pre_imbalanced(np, special, z, pre_var, na, nb, threshold)
    full = _pre_imbalanced_full(np, special, z, pre_var, na, nb, threshold)
    assert fast.tolist() == full.tolist()


def test_pre_period_shortcut_on_nan_and_infinite_z():
    na, nb = np.array([[5.0]]), np.array([[5.0, 5.0, 5.0]])
    pre_var = np.array([[1.0, 1.0, 0.0, 2.0]])
    z = np.array([[np.nan, np.inf, 0.0]])
    fast = _pre_imbalanced(np, special, z, pre_var, na, nb, 0.001)
    full = _pre_imbalanced_full(np, special, z, pre_var, na, nb, 0.001)
    assert fast.tolist() == full.tolist() == [[False, True, False]]


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_sequential_p_value_closed_form_equals_mixture_lr(alpha):
    rng = np.random.default_rng(7)
    eff = rng.normal(0, 0.1, 500)
    var = rng.uniform(1e-5, 1e-2, 500)
    n_total = rng.integers(2, 200_000, 500).astype(float)
    n_star = 5000.0
    la = np.log(alpha)
    rho2 = (-2 * la + np.log(-2 * la + 1)) / n_star  # Waudby-Smith et al. eq. 161
    tau2 = rho2 * var * n_total
    general, _ = K.mixture_sequential(np, eff, var, tau2, alpha)
    closed = K.confidence_sequence_p_value(np, eff, var, n_total, alpha, n_star)
    np.testing.assert_allclose(closed, general, rtol=1e-12, atol=1e-15)
