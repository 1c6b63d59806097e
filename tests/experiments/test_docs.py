"""The code blocks of docs/experiments.md's Engine section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "experiments.md"


def _engine_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Engine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_engine_section_has_a_quickstart() -> None:
    assert len(_engine_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_engine_blocks())))
def test_engine_code_blocks_execute(index: int) -> None:
    exec(compile(_engine_blocks()[index], f"{DOC}:engine-block{index}", "exec"), {})
