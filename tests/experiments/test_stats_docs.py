"""The code blocks of docs/experiments.md's "Statistics" section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "experiments.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    body = text.split("## Statistics", 1)[1]
    return re.split(r"\n## (?!#)", body, maxsplit=1)[0]


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _section(), flags=re.S)


def test_statistics_section_has_a_quickstart() -> None:
    assert _blocks()


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_statistics_blocks_execute(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(_blocks()[index], f"{DOC}:statistics-block{index}", "exec"), {})
    out = capsys.readouterr().out
    if index == 0:
        assert "ship new" in out
        assert "7669.19" in out
