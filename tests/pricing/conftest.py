"""Shared loaders for the pricing tests: the CLV reference values and the lifetimes data sets."""

from __future__ import annotations

import csv
import json
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def clv_reference(data_file) -> dict[str, Any]:
    """``stats/clv_reference_values.json`` (published Fader-Hardie numbers with tolerances)."""
    return json.loads(data_file("stats/clv_reference_values.json").read_text("utf-8"))


def _columns(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


@pytest.fixture(scope="session")
def cdnow(data_file) -> dict[str, np.ndarray]:
    """CDNOW 2,357-customer calibration summary: ID, frequency, recency, T (weeks)."""
    return _columns(data_file("stats/lifetimes/cdnow_customers_summary.csv"))


@pytest.fixture(scope="session")
def cdnow_monetary(data_file) -> dict[str, np.ndarray]:
    """CDNOW summary with zbar (mean repeat spend): ID, x, t_x, T, zbar."""
    return _columns(data_file("stats/lifetimes/cdnow_customers_summary_with_transactions.csv"))


@pytest.fixture(scope="session")
def donations(data_file) -> dict[str, np.ndarray]:
    """BG/BB donations data: frequency, recency, periods, weights (22 rows, 11,104 donors)."""
    return _columns(data_file("stats/lifetimes/donations.csv"))


@pytest.fixture(scope="session")
def cdnow_sample_log(data_file) -> dict[str, list[Any]]:
    """The raw CDNOW 1/10th sample: customer (renumbered id), date (YYYYMMDD), dollars."""
    out: dict[str, list[Any]] = {"id": [], "date": [], "amount": []}
    with open(data_file("stats/lifetimes/CDNOW_sample.txt")) as fh:
        for line in fh:
            parts = line.split()
            out["id"].append(int(parts[1]))
            out["date"].append(parts[2])
            out["amount"].append(float(parts[4]))
    return out
