"""Churn on IBM Telco: cross-validated AUC, calibration, no leakage; RFM features; save/load."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import ChurnModel, rfm_summary


@pytest.fixture(scope="module")
def telco(data_file):
    with open(data_file("stats/churn/Telco-Customer-Churn.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [r[k] for r in rows] for k in rows[0]}


def _subset(table, n):
    return {k: v[:n] for k, v in table.items()}


def test_telco_cross_validated_auc_and_calibration(telco):
    from sklearn.metrics import roc_auc_score

    report = ChurnModel(exclude=["customerID"]).cross_validate(
        telco, "Churn", positive="Yes", folds=5, seed=42
    )
    assert report.folds == 5 and len(report.auc_per_fold) == 5
    assert report.auc_mean >= 0.84
    y = np.array([v == "Yes" for v in telco["Churn"]])
    # the pooled out-of-fold AUC agrees with the fold means (independently computed)
    assert roc_auc_score(y, report.out_of_fold) == pytest.approx(report.auc_mean, abs=0.01)
    # calibrated: mean predicted churn is the observed rate, the binned error is small
    assert report.out_of_fold.mean() == pytest.approx(y.mean(), abs=0.01)
    assert report.calibration_error < 0.03
    assert 0 < report.brier < y.mean() * (1 - y.mean())  # better than the base rate


def test_preprocessing_is_fitted_inside_the_folds(telco):
    """Out-of-fold predictions equal those of a model that never saw the test fold."""
    from sklearn.model_selection import StratifiedKFold

    table = _subset(telco, 1200)
    # a column whose scale is dominated by the last rows: leaking its mean/std would show
    table["Spiky"] = [str(i * i) for i in range(1200)]
    model = ChurnModel(exclude=["customerID"], calibration=None)
    report = model.cross_validate(table, "Churn", positive="Yes", folds=3, seed=7)
    y = np.array([v == "Yes" for v in table["Churn"]]).astype(int)
    splits = StratifiedKFold(3, shuffle=True, random_state=7).split(np.zeros(1200), y)
    for train, test in splits:
        alone = ChurnModel(exclude=["customerID"], calibration=None).fit(
            {k: [v[i] for i in train] for k, v in table.items()}, "Churn", positive="Yes"
        )
        probs = alone.predict_proba({k: [v[i] for i in test] for k, v in table.items()})
        np.testing.assert_allclose(report.out_of_fold[test], probs, rtol=1e-9)


def test_gradient_boosting_and_importance(telco):
    table = _subset(telco, 1000)
    model = ChurnModel(estimator="gradient_boosting", calibration=None, exclude=["customerID"]).fit(
        table, "Churn", positive="Yes"
    )
    probs = model.predict_proba(table)
    assert np.all((probs >= 0) & (probs <= 1))
    importance = model.permutation_importance(table, "Churn", positive="Yes", repeats=1)
    # contract type and tenure are the classic churn drivers in this data
    top = sorted(importance, key=importance.get, reverse=True)[:4]
    assert {"Contract", "tenure"} & set(top)


def test_save_load_with_version_check(telco, tmp_path, monkeypatch):
    table = _subset(telco, 600)
    model = ChurnModel(exclude=["customerID"]).fit(table, "Churn", positive="Yes")
    path = tmp_path / "churn.pkl"
    model.save(path)
    back = ChurnModel.load(path)
    np.testing.assert_array_equal(back.predict_proba(table), model.predict_proba(table))
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "0.0.1")
    with pytest.raises(ConfigurationError, match="retrain"):
        ChurnModel.load(path)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ConfigurationError, match="not a saved ChurnModel"):
        ChurnModel.load(tmp_path / "junk.pkl")


def test_churn_from_rfm_features(cdnow_sample_log):
    s = rfm_summary(
        cdnow_sample_log,
        customer="id",
        timestamp="date",
        amount="amount",
        timestamp_format="%Y%m%d",
        calibration_end="19970930",
        observation_end="19980630",
        time_unit="W",
    )
    churned = (s.frequency_holdout == 0).astype(int)
    features = {k: s[k] for k in ("frequency", "recency", "T", "monetary_value")}
    report = ChurnModel().cross_validate(features, churned, folds=3)
    assert report.auc_mean > 0.75  # recency and frequency predict silence in the holdout


def test_bad_churn_input(telco):
    with pytest.raises(ConfigurationError, match="single class"):
        ChurnModel().fit({"a": [1, 2, 3], "y": [0, 0, 0]}, "y")
    with pytest.raises(ConfigurationError, match="positive="):
        ChurnModel().fit({"a": [1, 2, 3], "y": ["n", "y", "n"]}, "y")
    with pytest.raises(ConfigurationError, match="no column 'Nope'"):
        ChurnModel().fit(telco, "Nope")
    with pytest.raises(ConfigurationError, match="estimator"):
        ChurnModel(estimator="svm")
    with pytest.raises(ConfigurationError, match="not fitted"):
        ChurnModel().predict_proba(telco)


def test_revenue_at_risk_joins_ranks_and_reports_the_unmatched():
    from cognitionos.pricing import revenue_at_risk

    churn = {"customer": ["a", "b", "c", "d"], "churn_probability": [0.5, 0.1, 0.9, 0.3]}
    clv = {"customer": ["c", "a", "b", "e"], "clv": [10.0, 100.0, 40.0, 7.0]}
    risk = revenue_at_risk(churn, clv)
    assert [r["customer"] for r in risk.rows] == ["a", "c", "b"]  # 50, 9, 4
    assert [r["at_risk"] for r in risk.rows] == pytest.approx([50.0, 9.0, 4.0])
    assert risk.total_clv == pytest.approx(150.0)
    assert risk.total_at_risk == pytest.approx(63.0)
    assert risk.share_at_risk == pytest.approx(0.42)
    assert risk.only_churn == ("d",) and risk.only_clv == ("e",)
    assert risk.as_dict(top=1)["rows"] == [risk.rows[0]]


@pytest.mark.parametrize(
    ("churn", "clv", "message"),
    [
        ({"customer": ["a", "a"], "churn_probability": [0.1, 0.2]}, None, "repeats at row 1"),
        ({"customer": ["a"], "churn_probability": [1.5]}, None, r"in \[0, 1\]"),
        (None, {"customer": ["a"], "clv": [-1.0]}, ">= 0"),
        ({"customer": ["a"], "p": [0.5]}, None, "no column 'churn_probability'"),
    ],
)
def test_revenue_at_risk_names_bad_input(churn, clv, message):
    from cognitionos.pricing import revenue_at_risk

    churn = churn or {"customer": ["a"], "churn_probability": [0.5]}
    clv = clv or {"customer": ["a"], "clv": [1.0]}
    with pytest.raises(ConfigurationError, match=message):
        revenue_at_risk(churn, clv)
