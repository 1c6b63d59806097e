"""The authz documentation's code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "authz.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_a_quickstart() -> None:
    assert len(_python_blocks()) >= 1


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_docs_code_blocks_execute(index: int) -> None:
    exec(compile(_python_blocks()[index], f"{DOC}:block{index}", "exec"), {})
