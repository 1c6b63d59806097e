"""Plots are written as real PNG/SVG files (skipped without matplotlib, the `plots` extra)."""

from __future__ import annotations

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ArmSummary, analyze, plot_effect_over_time, plot_posteriors

pytest.importorskip("matplotlib", reason="matplotlib (the `plots` extra) is not installed")


def conv(arm: str, n: int, c: int) -> ArmSummary:
    return ArmSummary(arm, "cv", n=n, sum=c, sum_sq=c, kind="binomial")


def test_effect_over_time_png_and_svg(tmp_path):
    snapshots = [
        (day, [conv("A", 1000 * day, 100 * day), conv("B", 1000 * day, 112 * day)])
        for day in range(1, 8)
    ]
    png = plot_effect_over_time(snapshots, "cv", tmp_path / "effect.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_effect_over_time(snapshots, "cv", tmp_path / "effect.svg", method="frequentist")
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "confidence sequence" not in text


def test_posteriors(tmp_path):
    res = analyze([conv("A", 2000, 200), conv("B", 2000, 240)], method="bayesian")
    out = plot_posteriors(res, "cv", tmp_path / "post.png")
    assert out.stat().st_size > 5000
    s = 50 * 10.0
    cont = analyze([
        ArmSummary("A", "rev", n=50, sum=s, sum_sq=4 * 49 + s * s / 50),
        ArmSummary("B", "rev", n=50, sum=s + 20, sum_sq=4 * 49 + (s + 20) ** 2 / 50),
    ])  # fmt: skip
    assert plot_posteriors(cont, "rev", tmp_path / "rev.svg").stat().st_size > 1000


def test_bad_plot_requests(tmp_path):
    res = analyze([conv("A", 2000, 200), conv("B", 2000, 240)])
    with pytest.raises(ConfigurationError, match="must end in"):
        plot_posteriors(res, "cv", tmp_path / "x.gif")
    with pytest.raises(ConfigurationError):
        plot_effect_over_time([], "cv", tmp_path / "x.png")
    with pytest.raises(ConfigurationError, match="no summaries"):
        plot_effect_over_time([(1, [conv("A", 10, 1)])], "other", tmp_path / "x.png")
