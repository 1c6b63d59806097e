"""The docs quickstart and the examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_quickstart_runs():
    text = (ROOT / "docs" / "ratelimit.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", quickstart, re.S)
    assert code is not None
    exec(compile(code.group(1), "docs/ratelimit.md", "exec"), {})


@pytest.mark.parametrize("name", ["ratelimit_quickstart.py", "ratelimit_asgi.py"])
def test_examples_run(name):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
