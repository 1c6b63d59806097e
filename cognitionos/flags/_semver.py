"""SemVer 2.0 sort keys, shared by the condition language and the flagd importer.

Kept apart from both so that neither imports the other: ``_conditions`` uses
JsonLogic from ``_flagd`` and ``_flagd`` needs version ordering, and a module of
its own below both keeps the import graph acyclic.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_semver"]

# SemVer 2.0 grammar: numeric identifiers have no leading zero, pre-release
# identifiers are dot-separated alphanumerics, build metadata follows "+".
_NUM = r"(?:0|[1-9]\d*)"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def parse_semver(text: Any) -> tuple[Any, ...] | None:
    """A sort key for a strict SemVer 2.0 string (build metadata ignored), ``None`` if invalid.

    Keys compare like the versions do: a release sorts after its pre-releases,
    numeric pre-release identifiers before alphanumeric ones::

        parse_semver("1.2.3-rc.1") < parse_semver("1.2.3")  # True
    """
    if not isinstance(text, str):
        return None
    m = _SEMVER.fullmatch(text.strip())
    if m is None:
        return None
    core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    pre = m.group(4)
    if pre is None:
        return (*core, 1, ())
    idents = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, idents)
