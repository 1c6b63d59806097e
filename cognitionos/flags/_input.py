"""Untrusted flag documents in: JSON text parsed, nesting bounded, before any importer runs.

A payload that is not JSON, or one nested deeper than the importers can walk, would otherwise
escape as a raw ``JSONDecodeError`` or ``RecursionError`` from deep inside an importer. Every
``FlagEngine.from_*`` constructor and the CLI pass their input through :func:`load_document`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cognitionos.errors import ConfigurationError

__all__ = ["MAX_DEPTH", "check_depth", "load_document"]

#: deepest nesting of objects/arrays accepted in a flag document. Real definitions stay far
#: below it (a condition of ten nested $and/$or is already unusual); the compilers recurse a
#: few frames per level, so this keeps them well inside Python's recursion limit.
MAX_DEPTH = 100


def check_depth(data: Any, what: str, *, limit: int = MAX_DEPTH) -> None:
    """Raise ConfigurationError naming the path when ``data`` nests deeper than ``limit``.

    Walks iteratively, so a hostile document cannot exhaust the stack here either.
    """
    # each entry: (node, depth, index of the parent entry in ``steps``); steps[i] = (parent, part)
    steps: list[tuple[int, str]] = []
    stack: list[tuple[Any, int, int]] = [(data, 0, -1)]
    while stack:
        node, depth, at = stack.pop()
        if isinstance(node, Mapping):
            children = [(v, f".{k}" if isinstance(k, str) else f"[{k!r}]") for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [(v, f"[{i}]") for i, v in enumerate(node)]
        else:
            continue
        if depth >= limit:
            raise ConfigurationError(
                f"{what}: nested deeper than {limit} levels at {_path(steps, at)}"
            )
        for value, part in children:
            steps.append((at, part))
            stack.append((value, depth + 1, len(steps) - 1))


def _path(steps: list[tuple[int, str]], at: int) -> str:
    parts: list[str] = []
    while at >= 0:
        at, part = steps[at]
        parts.append(part)
    shown = "".join(reversed(parts)) or "<root>"
    return shown if len(shown) <= 160 else shown[:100] + "..." + shown[-57:]


def load_document(payload: Any, what: str) -> Any:
    """``payload`` parsed when it is JSON text (str/bytes), then depth-checked.

    data = load_document('{"features": {}}', "GrowthBook payload")
    """
    if isinstance(payload, bytes | bytearray):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigurationError(f"{what} is not UTF-8 text: {exc}") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise ConfigurationError(f"{what}: JSON nested too deeply to parse") from None
    check_depth(payload, what)
    return payload
