"""The flags modules import each other without cycles (lazy imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import cognitionos.flags

PACKAGE = Path(cognitionos.flags.__file__).parent


def _graph() -> dict[str, set[str]]:
    """Module name -> flags modules it imports anywhere in its source."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["cognitionos", "flags"] and len(parts) > 2:
                    deps.add(parts[2])
        graph[name] = deps - {name}
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_conditions_and_flagd_do_not_import_each_other() -> None:
    graph = _graph()
    # _conditions runs flagd's JsonLogic, so _flagd must not lead back to _conditions
    assert "_flagd" in graph["_conditions"]
    assert not _reaches(graph, "_flagd", "_conditions")
