"""The autoscale and dr documentation's code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _blocks(name: str) -> list[str]:
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("name", ["autoscale.md", "dr.md"])
def test_docs_have_a_quickstart_that_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(name)
    assert blocks
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{name}:block{i}", "exec"), {})
