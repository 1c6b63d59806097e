"""Fit diagnostics: the histogram and tracking data, and the PNG/SVG files drawn from them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import numpy as np
import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import (
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    repeat_purchase_histogram,
    tracking_plot,
)

pytest.importorskip("matplotlib")

BG = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}


def _png_ok(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def _svg_ok(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel])
def test_repeat_purchase_histogram_on_cdnow(cdnow, tmp_path, suffix, model_class):
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    m = (
        model_class.from_params(**BG)
        if model_class is BetaGeoModel
        else model_class.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    )
    path = tmp_path / f"hist{suffix}"
    h = repeat_purchase_histogram(m, x, tx, T, max_frequency=7, path=path)
    assert h.path == str(path)
    (_png_ok if suffix == ".png" else _svg_ok)(path)
    # actual counts, computed here independently
    want = [int(np.sum(x == k)) for k in range(7)] + [int(np.sum(x >= 7))]
    assert h.actual.tolist() == want
    assert want[0] == 1411  # FHL (2005) Figure: 1,411 CDNOW customers made no repeat purchase
    # expected: the model's pmf summed customer by customer (no grouping by T)
    for k in (0, 1, 3):
        per_customer = sum(float(m.probability_of_purchases(t, k)) for t in T)
        assert h.expected[k] == pytest.approx(per_customer, rel=1e-9)
    assert h.expected.sum() == pytest.approx(x.size)
    # the figure shows exactly these numbers
    np.testing.assert_allclose(h.plotted["actual"], h.actual)
    np.testing.assert_allclose(h.plotted["expected"], h.expected)
    assert h.labels[-1] == "7+"


def test_tracking_plot_on_the_cdnow_log(cdnow_sample_log, tmp_path):
    start = date(1997, 1, 1)
    weeks = {}
    for cid, d in zip(cdnow_sample_log["id"], cdnow_sample_log["date"], strict=True):
        day = (date(int(d[:4]), int(d[4:6]), int(d[6:])) - start).days
        weeks.setdefault(cid, set()).add(day)
    first = np.array([min(days) / 7 for days in weeks.values()])
    repeats = np.array([d / 7 for days in weeks.values() for d in sorted(days)[1:]])
    grid = np.arange(1, 79, dtype=float)
    m = BetaGeoModel.from_params(**BG)
    path = tmp_path / "track.png"
    tr = tracking_plot(m, first, repeats, times=grid, path=path)
    _png_ok(path)
    assert tr.actual[-1] == repeats[repeats <= 78].size
    assert tr.actual[10] == np.sum(repeats <= grid[10])
    # expected at week 78: each customer's E[X] over their own age, summed one by one
    by_hand = sum(float(m.unconditional_expected_purchases(max(78 - f, 0.0))) for f in first)
    assert tr.expected[-1] == pytest.approx(by_hand, rel=1e-9)
    assert np.all(np.diff(tr.expected) > 0)
    # BG/NBD tracks the cohort: within 10% at the end of the 78 weeks (calibration + holdout)
    assert tr.expected[-1] == pytest.approx(tr.actual[-1], rel=0.1)
    np.testing.assert_allclose(tr.plotted["x"], grid)
    np.testing.assert_allclose(tr.plotted["actual"], tr.actual)
    np.testing.assert_allclose(tr.plotted["expected"], tr.expected)
    svg = tmp_path / "track.svg"
    tracking_plot(m, first, repeats, times=grid, path=svg)
    _svg_ok(svg)


def test_plots_refuse_bad_input(tmp_path):
    m = BetaGeoModel.from_params(**BG)
    with pytest.raises(ConfigurationError, match=r"\.png or \.svg"):
        repeat_purchase_histogram(m, [0, 1], [0, 2], [5, 5], path=tmp_path / "h.jpg")
    with pytest.raises(ConfigurationError, match="ParetoNBDModel has no"):
        repeat_purchase_histogram(
            ParetoNBDModel.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7), [0], [0], [5]
        )
    with pytest.raises(ConfigurationError, match=r"rows? 1"):
        repeat_purchase_histogram(m, [0, 1.5], [0, 2], [5, 5])
    with pytest.raises(ConfigurationError, match="increasing"):
        tracking_plot(m, [0.0], [1.0], times=[2, 1])
    with pytest.raises(ConfigurationError, match="before every first purchase"):
        tracking_plot(m, [3.0], [1.0], times=[1, 2])
