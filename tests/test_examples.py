"""Every script under examples/ runs to completion (engine tests check their own outputs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(
    p for p in (Path(__file__).parent.parent / "examples").glob("*.py") if p.name != "quickstart.py"
)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_main_job_decisions(tmp_path):
    """The README's first command: WAF, auto-blacklist, rate limit and flags on SQLite + memory."""
    script = Path(__file__).parent.parent / "examples" / "quickstart.py"
    done = subprocess.run(
        [sys.executable, str(script), "--db", str(tmp_path / "q.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "banned:        ['203.0.113.9']" in done.stdout
    assert "403 waf sqli" in done.stdout and "429 retry after" in done.stdout
    assert (tmp_path / "q.db").exists()
