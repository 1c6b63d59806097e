"""The examples/waf_*.py scripts run and their own assertions hold."""

from __future__ import annotations

import pathlib
import runpy

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[2] / "examples").glob("waf_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    assert "True" in capsys.readouterr().out


def test_docs_quickstart_runs():
    doc = pathlib.Path(__file__).parents[2] / "docs" / "waf.md"
    text = doc.read_text(encoding="utf-8")
    start = text.index("```python", text.index("## Quickstart")) + len("```python")
    code = text[start : text.index("```", start)]
    namespace: dict[str, object] = {}
    exec(compile(code, str(doc), "exec"), namespace)  # our own documentation
