"""A run without the conformance data collects the same tests and says what it did not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cognitionos.testing import SharedDataMissing, shared_data
from tests.conftest import missing_data_reason

ROOT = Path(__file__).resolve().parents[1]
GROWTHBOOK = "tests/flags/test_growthbook_conformance.py"


def _pytest(*args: str, data: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COGNITIONOS_SHARED_DATA": data}
    env.pop("COGNITIONOS_REQUIRE_SERVICES", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _collected(out: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"(\d+) tests? collected", out.stdout)
    assert found, out.stdout[-2000:] + out.stderr[-2000:]
    return int(found.group(1))


def test_without_data_every_growthbook_case_is_collected_and_skipped(tmp_path):
    out = _pytest(GROWTHBOOK, "-q", "-rs", "-k", "test_hash", data=str(tmp_path / "absent"))
    assert out.returncode == 0, out.stdout[-2000:]
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"15 skipped, \d+ deselected in .*", lines[-1]), lines[-1]
    assert lines[-2] == (
        "conformance data missing: 15 tests not run (growthbook); see docs/development.md"
    )
    assert "flags/growthbook_cases.json" in out.stdout  # the reason names the file


def test_same_tests_collected_with_and_without_data(tmp_path):
    try:
        data = shared_data()
    except SharedDataMissing as exc:
        pytest.skip(missing_data_reason("flags/growthbook_cases.json", str(exc)))
    # the whole suite: a data-driven test added anywhere must keep collecting without the data
    with_data = _pytest("--collect-only", "-q", "tests", data=str(data))
    without = _pytest("--collect-only", "-q", "tests", data=str(tmp_path / "absent"))
    assert _collected(with_data) == _collected(without)


def test_recorded_section_sizes_match_the_data(data_file):
    import json

    from tests.flags._gb import CASES_FILE, SECTION_SIZES

    cases = json.loads(data_file(CASES_FILE).read_text(encoding="utf-8"))
    sizes = {k: len(v) for k, v in cases.items() if isinstance(v, list)}
    assert sizes == SECTION_SIZES
