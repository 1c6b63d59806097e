"""The flags documentation's code blocks and the examples run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "flags.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_a_quickstart() -> None:
    assert len(_python_blocks()) >= 1


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_docs_code_blocks_execute(index: int) -> None:
    exec(compile(_python_blocks()[index], f"{DOC}:block{index}", "exec"), {})


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples").glob("flags_*.py")), ids=lambda p: p.name
)
def test_examples_execute(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out
