"""``cognitionos experiment analyze KEY|FILE``: the results table, from the store or a file.

Expected values are worked out by hand from the tracked data: 1,000 units per arm, 100 vs 150
conversions, so the absolute lift is 0.05 and the relative one +50 %; Welch's test with
the variance p(1-p)/n per arm (gbstats' convention) gives t = 3.38 on about 1,900 degrees of
freedom (p = 0.0007).
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from cognitionos.cli import main
from cognitionos.experiments import ExperimentEngine


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    return CliRunner()


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'exp.db'}"
    engine = ExperimentEngine(store=url)
    engine.create(
        {
            "key": "checkout",
            "arms": [{"key": "control"}, {"key": "new"}],
            "metrics": [{"name": "bought", "kind": "binomial"}],
        }
    )
    engine.start("checkout")
    exposures = [(f"c{i}", "control") for i in range(1000)]
    exposures += [(f"n{i}", "new") for i in range(1000)]
    engine.track_exposures("checkout", exposures)
    buys = [(f"c{i}", "bought", 1.0, f"e-c{i}") for i in range(100)]
    buys += [(f"n{i}", "bought", 1.0, f"e-n{i}") for i in range(150)]
    engine.track_many("checkout", buys)
    engine.close()
    return url


def _welch_p() -> float:
    from scipy import stats

    p1, p2 = 0.10, 0.15
    v1, v2 = p1 * (1 - p1) / 1000, p2 * (1 - p2) / 1000
    t = (p2 - p1) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / 999 + v2**2 / 999)
    return float(2 * stats.t.sf(t, df))


def test_analyze_a_key_in_the_store(runner, store):
    res = runner.invoke(
        main,
        ["experiment", "analyze", "checkout", "--store", store, "--json", "--correction", "none"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (arm,) = doc["arms"]
    assert (arm["arm"], arm["control"], arm["n"], arm["control_n"]) == (
        "new",
        "control",
        1000,
        1000,
    )
    assert arm["effect_abs"] == pytest.approx(0.05)
    assert arm["effect_rel"] == pytest.approx(0.5)
    assert arm["p_value"] == pytest.approx(_welch_p(), rel=1e-6)
    assert doc["srm_p_value"] == pytest.approx(1.0)  # 1000 vs 1000 at weights 1/2, 1/2
    assert doc["decision"]["action"] == "ship" and doc["decision"]["arm"] == "new"

    table = runner.invoke(main, ["experiment", "analyze", "checkout", "--store", store])
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if x.startswith("bought"))
    assert "new" in line and "+50.00%" in line
    assert "decision: ship new" in table.stdout


def test_analyze_a_summary_file_gives_the_same_answer(runner, store, tmp_path):
    res = runner.invoke(main, ["experiment", "summary", "checkout", "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "summary.json"
    path.write_text(res.stdout)
    out = runner.invoke(
        main, ["experiment", "analyze", str(path), "--json", "--method", "bayesian"]
    )
    assert out.exit_code == 0, out.output
    (arm,) = json.loads(out.stdout)["arms"]
    assert arm["effect_abs"] == pytest.approx(0.05)
    # 150/1000 vs 100/1000: the treatment is better with near certainty
    assert arm["chance_to_win"] > 0.999


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "not valid JSON"), ('{"arms": 3}', "per-arm summaries"), ('[{"x": 1}]', "#0")],
)
def test_bad_summary_files_are_one_line_errors(runner, tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    res = runner.invoke(main, ["experiment", "analyze", str(path)])
    assert res.exit_code == 1
    assert words in res.output and "Traceback" not in res.output


def test_an_unknown_key_is_a_one_line_error(runner, store):
    res = runner.invoke(main, ["experiment", "analyze", "nope", "--store", store])
    assert res.exit_code == 1 and "nope" in res.output
