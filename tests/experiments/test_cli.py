"""``cognitionos experiment ...`` follows the CLI conventions (--store, --json, one-line errors)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cognitionos.cli import main
from cognitionos.hashing import growthbook_hash


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    return CliRunner()


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'exp.db'}"


@pytest.fixture
def definition(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text(
        json.dumps(
            {
                "key": "checkout",
                "arms": [{"key": "control"}, {"key": "new"}],
                "metrics": [{"name": "revenue"}, {"name": "bought", "kind": "binomial"}],
            }
        )
    )
    return path


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_full_cycle_through_the_cli(runner, store, definition):
    _ok(runner.invoke(main, ["experiment", "create", str(definition), "--store", store]))
    rows = json.loads(
        _ok(runner.invoke(main, ["experiment", "list", "--store", store, "--json"])).stdout
    )
    assert [(r["key"], r["status"]) for r in rows] == [("checkout", "draft")]
    # not running: not in the experiment, exit 1 for scripts
    res = runner.invoke(main, ["experiment", "--store", store, "assign", "checkout", "u1"])
    assert res.exit_code == 1 and "not_running" in res.stdout
    _ok(runner.invoke(main, ["experiment", "start", "checkout", "--store", store]))
    doc = json.loads(
        _ok(
            runner.invoke(
                main,
                ["experiment", "assign", "checkout", "u1", "--expose", "--store", store, "--json"],
            )
        ).stdout
    )
    n = growthbook_hash("checkout", "u1", 2)
    assert n is not None
    assert doc["variant"] == ("control" if n < 0.5 else "new") and doc["in_experiment"]
    arm = doc["variant"]
    for args in (["12.5", "--event-id", "o1"], ["12.5", "--event-id", "o1"], ["3"]):
        _ok(
            runner.invoke(
                main, ["experiment", "track", "checkout", "u1", "revenue", *args, "--store", store]
            )
        )
    out = json.loads(
        _ok(
            runner.invoke(main, ["experiment", "summary", "checkout", "--store", store, "--json"])
        ).stdout
    )
    rev = next(r for r in out["arms"] if r["arm"] == arm and r["metric"] == "revenue")
    assert (rev["n"], rev["sum"], rev["sum_sq"]) == (1, 15.5, 15.5**2)
    assert out["units"][arm] == 1 and out["multiple_exposures"] == 0
    shown = json.loads(
        _ok(
            runner.invoke(main, ["experiment", "show", "checkout", "--store", store, "--json"])
        ).stdout
    )
    assert shown["definition"]["status"] == "running"
    _ok(runner.invoke(main, ["experiment", "stop", "checkout", "--store", store]))
    text = _ok(runner.invoke(main, ["experiment", "summary", "checkout", "--store", store])).stdout
    assert "revenue" in text and arm in text


def test_listing_an_empty_store_is_valid_json(runner, store):
    res = _ok(runner.invoke(main, ["experiment", "list", "--store", store, "--json"]))
    assert json.loads(res.stdout) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["experiment", "show", "nope"], "nope"),
        (["experiment", "track", "nope", "u1", "m", "1"], "nope"),
        (["experiment", "assign", "x", "u1", "--attr", "novalue"], "novalue"),
    ],
)
def test_errors_are_one_line_naming_the_input(runner, store, args, named):
    res = runner.invoke(main, [*args, "--store", store])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and named in lines[0]


def test_bad_definition_file_is_named(runner, store, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    res = runner.invoke(main, ["experiment", "create", str(path), "--store", store])
    assert res.exit_code == 1 and "bad.json" in res.stderr


def test_phases_and_per_phase_srm_through_the_cli(runner, store, definition):
    from scipy import stats

    from cognitionos.experiments import ExperimentEngine

    _ok(runner.invoke(main, ["experiment", "create", str(definition), "--store", store]))
    text = _ok(runner.invoke(main, ["experiment", "phases", "checkout", "--store", store])).stdout
    assert "no phases" in text
    _ok(runner.invoke(main, ["experiment", "start", "checkout", "--store", store]))
    with ExperimentEngine(store=store) as engine:
        engine.track_exposures("checkout", [(f"a{i}", "control") for i in range(300)])
        engine.track_exposures("checkout", [(f"b{i}", "new") for i in range(300)])
        engine.update("checkout", {"arms": [{"key": "control", "weight": 0.1},
                                            {"key": "new", "weight": 0.9}]})  # fmt: skip
        engine.track_exposures("checkout", [(f"c{i}", "control") for i in range(100)])
        engine.track_exposures("checkout", [(f"d{i}", "new") for i in range(300)])
    doc = json.loads(
        _ok(
            runner.invoke(main, ["experiment", "phases", "checkout", "--store", store, "--json"])
        ).stdout
    )
    assert [p["units"] for p in doc["phases"]] == [
        {"control": 300, "new": 300},
        {"control": 100, "new": 300},
    ]
    assert [p["weights"] for p in doc["phases"]][1] == {"control": 0.1, "new": 0.9}
    text = _ok(runner.invoke(main, ["experiment", "phases", "checkout", "--store", store])).stdout
    assert "control 0.1 -> 100" in text and "new 0.9 -> 300" in text
    out = json.loads(
        _ok(
            runner.invoke(main, ["experiment", "analyze", "checkout", "--store", store, "--json"])
        ).stdout
    )
    p1 = stats.chisquare([100, 300], [40, 360]).pvalue
    assert [p["p_value"] for p in out["srm_phases"]] == pytest.approx([1.0, p1], rel=1e-9)
    assert out["srm_p_value"] == pytest.approx(p1, rel=1e-9) and out["srm_detected"]
    text = _ok(runner.invoke(main, ["experiment", "analyze", "checkout", "--store", store])).stdout
    assert "worst of 2 phases" in text and "phase 1: control 100, new 300" in text
