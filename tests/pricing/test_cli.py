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
    # BG/NBD's p_alive = 1 for one-time buyers is flagged, with the model that avoids it
    assert "1411 customer(s) with no repeat purchase" in pred.stderr
    assert "mbg_nbd" in pred.stderr
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
    res = _ok(runner.invoke(main, ["pricing", "elasticity", str(path), "--varying"]))
    assert "geometric mean" in res.stdout and "per unit of log price" in res.stdout
    res = _ok(runner.invoke(main, ["pricing", "elasticity", str(path), "--varying", "--json"]))
    varying = json.loads(res.stdout)
    # the data have a constant elasticity: the fitted curvature is near 0
    assert abs(varying["curvature"]) < 0.3 and varying["center_log_price"] is not None
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


def _churn_csv(path, n=400, seed=3):
    # churn driven by tenure (down) and plan (up): a learnable signal with known direction
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    plan = rng.choice(["monthly", "yearly"], n)
    logit = 1.0 - 0.06 * tenure + np.where(plan == "monthly", 1.2, -1.2)
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "tenure", "plan", "Churn"])
        for i in range(n):
            w.writerow([f"u{i}", tenure[i], plan[i], "Yes" if churned[i] else "No"])
    return churned


def test_churn_train_score_and_revenue_at_risk(runner, tmp_path):
    data = tmp_path / "customers.csv"
    churned = _churn_csv(data)
    model = tmp_path / "churn.pkl"
    train = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "churn",
                "train",
                str(data),
                "--target",
                "Churn",
                "--positive",
                "Yes",
                "--exclude",
                "id",
                "--folds",
                "3",
                "--output",
                str(model),
                "--json",
            ],
        )
    )
    doc = json.loads(train.stdout)
    assert doc["numeric"] == ["tenure"] and doc["categorical"] == ["plan"]
    assert len(doc["cross_validation"]["auc_per_fold"]) == 3
    assert doc["cross_validation"]["auc_mean"] > 0.7  # the signal is strong
    score = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "churn",
                "score",
                str(data),
                "--model-file",
                str(model),
                "--customer",
                "id",
                "--json",
            ],
        )
    )
    rows = json.loads(score.stdout)
    assert [r["customer"] for r in rows][:2] == ["u0", "u1"] and len(rows) == churned.size
    p = np.array([r["churn_probability"] for r in rows])
    assert np.all((p >= 0) & (p <= 1))
    assert p[churned].mean() > p[~churned].mean() + 0.15
    # the CSV form carries the same numbers
    text = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "churn",
                "score",
                str(data),
                "--model-file",
                str(model),
                "--customer",
                "id",
            ],
        )
    ).stdout.splitlines()
    assert text[0] == "customer,churn_probability"
    assert float(text[1].split(",")[1]) == pytest.approx(p[0], rel=1e-5)

    churn_csv = tmp_path / "scores.csv"
    churn_csv.write_text("\n".join(text) + "\n")
    clv_csv = tmp_path / "clv.csv"
    clv = {f"u{i}": float(10 + i) for i in range(churned.size) if i != 5}
    clv["newcomer"] = 50.0
    clv_csv.write_text("customer,clv\n" + "".join(f"{k},{v}\n" for k, v in clv.items()))
    risk = json.loads(
        _ok(
            runner.invoke(
                main,
                [
                    "pricing",
                    "churn",
                    "risk",
                    "--churn",
                    str(churn_csv),
                    "--clv",
                    str(clv_csv),
                    "--top",
                    "5",
                    "--json",
                ],
            )
        ).stdout
    )
    assert risk["only_in_churn"] == ["u5"] and risk["only_in_clv"] == ["newcomer"]
    assert risk["customers"] == churned.size - 1 and len(risk["rows"]) == 5
    probs = {f"u{i}": float(line.split(",")[1]) for i, line in enumerate(text[1:])}
    expected = sum(probs[k] * v for k, v in clv.items() if k in probs)
    assert risk["total_at_risk"] == pytest.approx(expected, rel=1e-5)
    top = risk["rows"]
    assert [r["at_risk"] for r in top] == sorted((r["at_risk"] for r in top), reverse=True)
    assert top[0]["at_risk"] == pytest.approx(
        max(probs[k] * v for k, v in clv.items() if k in probs), rel=1e-5
    )


def test_churn_score_refuses_a_model_from_another_sklearn(runner, tmp_path):
    import pickle

    data = tmp_path / "customers.csv"
    _churn_csv(data, n=120)
    model = tmp_path / "churn.pkl"
    _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "churn",
                "train",
                str(data),
                "--target",
                "Churn",
                "--positive",
                "Yes",
                "--exclude",
                "id",
                "--folds",
                "0",
                "--output",
                str(model),
            ],
        )
    )
    payload = pickle.loads(model.read_bytes())
    payload["sklearn"] = "0.0.1"
    model.write_bytes(pickle.dumps(payload))
    res = runner.invoke(main, ["pricing", "churn", "score", str(data), "--model-file", str(model)])
    assert res.exit_code != 0 and "scikit-learn 0.0.1" in res.output and "retrain" in res.output


def test_mbg_nbd_fit_and_predict_through_a_model_file(runner, tmp_path, cdnow, clv_reference):
    rfm = tmp_path / "rfm.csv"
    with open(rfm, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer", "frequency", "recency", "T"])
        w.writerows(
            zip(
                cdnow["ID"].astype(int),
                cdnow["frequency"],
                cdnow["recency"],
                cdnow["T"],
                strict=True,
            )
        )
    model = tmp_path / "mbg.json"
    fit = json.loads(
        _ok(
            runner.invoke(
                main,
                [
                    "pricing",
                    "clv",
                    "fit",
                    str(rfm),
                    "--model",
                    "mbg_nbd",
                    "--output",
                    str(model),
                    "--json",
                ],
            )
        ).stdout
    )
    assert fit["model"] == "mbg_nbd" and fit["converged"]
    for name, value in clv_reference["modified_bg_nbd_cdnow"]["params"].items():
        assert fit["params"][name] == pytest.approx(value, abs=1.5e-3)
    pred = _ok(
        runner.invoke(
            main,
            [
                "pricing",
                "clv",
                "predict",
                str(rfm),
                "--model-file",
                str(model),
                "--horizon",
                "39",
                "--json",
            ],
        )
    )
    assert "no repeat purchase" not in pred.stderr
    rows = json.loads(pred.stdout)
    one_time = [r for r, x in zip(rows, cdnow["frequency"], strict=True) if x == 0]
    assert one_time and all(0 < r["p_alive"] < 1 for r in one_time)  # BG/NBD would say 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xc0\xff\x00garbage" * 100, "not UTF-8 text (byte 0xc0 at offset 0)"),
        (b"price,quantity\n1,2\n2\n", "row 2 has no column 'quantity'"),
        (b"price,quantity\n1,2\nabc,3\n", "column 'price' row 2: 'abc' is not a number"),
        (b"", "empty file"),
    ],
)
def test_unreadable_csv_files_are_one_line_errors(runner, tmp_path, content, needle):
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    res = runner.invoke(main, ["pricing", "elasticity", str(path)])
    assert res.exit_code == 1
    assert needle in res.output and "Traceback" not in res.output
