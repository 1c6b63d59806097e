"""RFM summaries from raw logs against Fader & Hardie's CDNOW summary and hand-made logs."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import BetaGeoModel, rfm_summary


def test_cdnow_sample_log_gives_the_published_summary(cdnow_sample_log, cdnow_monetary):
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
    assert len(s) == 2357
    order = np.argsort(cdnow_monetary["ID"])
    assert np.array_equal(s.customer, cdnow_monetary["ID"][order].astype(int))
    np.testing.assert_array_equal(s.frequency, cdnow_monetary["x"][order])
    # the published file rounds weeks and dollars to 2 decimals
    np.testing.assert_allclose(s.recency, cdnow_monetary["t_x"][order], atol=0.005)
    np.testing.assert_allclose(s.T, cdnow_monetary["T"][order], atol=0.005)
    np.testing.assert_allclose(s.monetary_value, cdnow_monetary["zbar"][order], atol=0.005)
    assert s.duration_holdout == pytest.approx(39.0)  # 1997-10-01 .. 1998-06-30 is 273 days
    assert s.frequency_holdout.sum() > 0
    # and it feeds a model directly
    m = BetaGeoModel().fit(s)
    assert m.log_likelihood == pytest.approx(-9582.43, abs=0.05)


def test_hand_made_log():
    log = [
        {"c": "a", "t": "2024-01-01", "v": 10.0},
        {"c": "a", "t": "2024-01-01 18:00", "v": 5.0},  # same day: merged, spend adds up
        {"c": "a", "t": "2024-01-08", "v": 20.0},
        {"c": "a", "t": "2024-01-15", "v": 40.0},
        {"c": "b", "t": "2024-01-10", "v": 7.0},
        {"c": "a", "t": "2024-01-20", "v": 99.0},  # holdout
        {"c": "c", "t": "2024-01-20", "v": 1.0},  # first seen in the holdout: excluded
        {"c": "b", "t": "2024-02-20", "v": 1.0},  # after observation_end: ignored
    ]
    s = rfm_summary(
        log,
        customer="c",
        timestamp="t",
        amount="v",
        calibration_end="2024-01-15",
        observation_end="2024-01-29",
    )
    assert list(s.customer) == ["a", "b"]
    assert list(s.frequency) == [2, 0]
    assert list(s.recency) == [14, 0]
    assert list(s.T) == [14, 5]
    assert list(s.monetary_value) == [30.0, 0.0]
    assert list(s.frequency_holdout) == [1, 0]
    assert list(s.monetary_value_holdout) == [99.0, 0.0]
    assert s.duration_holdout == 14
    assert s.excluded_new_in_holdout == 1
    rows = list(s.rows())
    assert rows[0]["customer"] == "a" and rows[0]["frequency"] == 2


def test_numeric_timestamps_and_datetimes_agree():
    when = [datetime(2024, 1, 1), datetime(2024, 1, 3), datetime(2024, 1, 6)]
    a = rfm_summary({"c": [1, 1, 2], "t": when}, customer="c", timestamp="t")
    b = rfm_summary({"c": [1, 1, 2], "t": [0.0, 2.0, 5.0]}, customer="c", timestamp="t")
    np.testing.assert_array_equal(a.recency, b.recency)
    np.testing.assert_array_equal(a.T, b.T)


@pytest.mark.parametrize(
    ("log", "kwargs", "message"),
    [
        (
            {"c": [1], "t": ["2024-01-01"], "v": [-3.0]},
            {"amount": "v"},
            "negative or missing at row 0",
        ),
        ({"c": [1], "t": ["yesterday"]}, {}, "not a date"),
        ({"c": [1], "t": ["01/02/2024"]}, {"timestamp_format": "%Y-%m-%d"}, "row 0"),
        ({"c": [1]}, {}, "no column 't'"),
        ({"c": [1], "t": [1.0]}, {"time_unit": "fortnight"}, "time_unit"),
        ({"c": [1], "t": [1.0]}, {"calibration_end": 5.0, "observation_end": 2.0}, "after"),
    ],
)
def test_bad_logs_are_named(log, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        rfm_summary(log, customer="c", timestamp="t", **kwargs)
