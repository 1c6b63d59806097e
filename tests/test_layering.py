"""Imports point only downward: kernel <- storage <- engines <- integrations <- server <- cli.

Read from the source with ``ast`` so a violation fails even when the import is lazy
(inside a function).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cognitionos

PACKAGE = Path(cognitionos.__file__).parent
KERNEL = {
    "errors",
    "clock",
    "_optional",
    "_fork",
    "hashing",
    "bucketing",
    "metrics",
    "__init__",
    "_cli_common",
}
UPPER = {"integrations", "server", "cli", "_cli_storage"}
WEB_FRAMEWORKS = {"fastapi", "starlette", "flask", "django", "uvicorn"}


def _layer(module_parts: tuple[str, ...]) -> str:
    head = module_parts[0] if module_parts else "__init__"
    head = head.removesuffix(".py")
    if head in KERNEL:
        return "kernel"
    if head == "storage":
        return "storage"
    if head == "testing":
        return "testing"
    if head in UPPER:
        return head
    return f"engine:{head}"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    here = _layer(path.relative_to(PACKAGE).parts)
    for name in _imports(path):
        top = name.split(".")[0]
        if top in WEB_FRAMEWORKS:
            assert here in ("integrations", "server", "cli"), f"{here} imports web framework {name}"
        if top != "cognitionos":
            continue
        parts = tuple(name.split(".")[1:])
        target = _layer(parts) if parts else "kernel"
        if here == "kernel":
            assert target == "kernel", f"kernel module imports {name}"
        elif here == "storage":
            assert target in ("kernel", "storage"), f"storage imports {name}"
        elif here.startswith("engine:"):
            # another engine only through its public package (``cognitionos.flags``), never
            # its internals: experiments ship winners as flags and share the condition language
            public = len(parts) == 1 and target.startswith("engine:")
            assert target in ("kernel", "storage", here) or public, f"{here} imports {name}"
        elif here == "testing":
            assert target in ("kernel", "storage", "testing"), f"testing helpers import {name}"
        elif here == "integrations":
            assert target not in ("server", "cli"), f"integrations import {name}"
        elif here == "server":
            assert target != "cli", f"server imports {name}"
