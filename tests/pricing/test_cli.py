"""``cognitionos pricing``: rfm, clv fit/predict through a store, elasticity, optimal-price."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cognitionos.cli import main


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    return CliRunner()


def _ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def test_rfm_then_fit_then_predict(runner, tmp_path, cdnow_sample_log, clv_reference):
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "date", "amount"])
        w.writerows(zip(*cdnow_sample_log.values(), strict=True))
    res = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "rfm",
                str(log),
                "--customer",
                "id",
                "--timestamp",
                "date",
                "--amount",
                "amount",
                "--timestamp-format",
                "%Y%m%d",
                "--observation-end",
                "19970930",
                "--time-unit",
                "W",
            ],
        )
    )
    rfm = tmp_path / "rfm.csv"
    rfm.write_text(res.stdout)
    assert res.stdout.splitlines()[0] == "customer,frequency,recency,T,monetary_value"
    store = f"sqlite:///{tmp_path / 's.db'}"
    fit = _ok(
        runner.invoke(
            main, ["pricing", "clv", "fit", str(rfm), "--name", "cdnow", "--store", store, "--json"]
        )
    )
    doc = json.loads(fit.stdout)
    ref = clv_reference["bg_nbd_cdnow"]
    assert doc["log_likelihood"] == pytest.approx(ref["loglik_computed_here_at_mle"], abs=0.05)
    assert doc["converged"] is True
    pred = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "clv",
                "predict",
                str(rfm),
                "--name",
                "cdnow",
                "--horizon",
                "39",
                "--store",
                store,
                "--json",
            ],
        )
    )
    rows = json.loads(pred.stdout)
    assert len(rows) == 2357
    first = rows[0]
    assert first["customer"] == "1"
    assert first["expected_purchases"] == pytest.approx(1.226, abs=0.01)  # Hardie: x=2 customer
    gg = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "clv",
                "fit",
                str(rfm),
                "--model",
                "gamma_gamma",
                "--output",
                str(tmp_path / "gg.json"),
                "--json",
            ],
            env={"COGNITIONOS_STORE": store},
        )
    )
    assert json.loads(gg.stdout)["params"]["p"] == pytest.approx(6.25, abs=0.05)


def test_clv_errors_are_one_line(runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frequency,recency,T\n1,5,3\n")
    res = runner.invoke(
        main, ["pricing", "clv", "fit", str(bad), "--store", f"sqlite:///{tmp_path / 's.db'}"]
    )
    assert res.exit_code == 1
    assert "recency > T at row 0" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        main,
        [
            "pricing",
            "clv",
            "predict",
            str(bad),
            "--name",
            "nope",
            "--horizon",
            "3",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
        ],
    )
    assert res.exit_code == 1 and "no model named 'nope'" in res.output


def test_elasticity_and_optimal_price(runner, tmp_path):
    rng = np.random.default_rng(0)
    p = np.exp(rng.uniform(0, 1, 300))
    q = np.exp(3 - 2.0 * np.log(p) + rng.normal(0, 0.1, 300))
    path = tmp_path / "sales.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["price", "quantity"])
        w.writerows(zip(p, q, strict=True))
    res = _ok(runner.invoke(main, ["pricing", "elasticity", str(path), "--robust", "--json"]))
    est = json.loads(res.stdout)
    assert est["ci_low"] <= -2.0 <= est["ci_high"] and est["robust"] is True
    res = _ok(
        runner.invoke(
            main, ["pricing", "optimal-price", "--elasticity", "-2.5", "--unit-cost", "3", "--json"]
        )
    )
    assert json.loads(res.stdout)["price"] == pytest.approx(3 * 2.5 / 1.5)
    res = runner.invoke(
        main, ["pricing", "optimal-price", "--elasticity", "-0.5", "--unit-cost", "3"]
    )
    assert res.exit_code == 1 and "bounds" in res.output
    res = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "optimal-price",
                "--elasticity",
                "-3",
                "--unit-cost",
                "10",
                "--bounds",
                "5",
                "40",
                "--charm",
                ".99",
            ],
        )
    )
    assert res.stdout.strip() == "14.9900"
