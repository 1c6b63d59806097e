"""Policy rows from Casbin's CSV format or from Python sequences.

One row per line: ``p, alice, data1, read``. The first field names the
definition (``p``, ``p2``, ``g``, ``g2``...). Fields are separated by commas;
spaces after a comma are skipped and each field is trimmed; a field holding a
comma is written in double quotes (``p, alice, "data1,data2", read``) and a
double quote inside quotes is doubled (``""``), as in RFC 4180 and Casbin's
file adapter. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from cognitionos.errors import ConfigurationError

__all__ = ["parse_policy_text", "rows_from"]

Row = tuple[str, ...]


def parse_policy_text(text: str, *, source: str = "policy") -> list[tuple[int, Row]]:
    """Split CSV policy text into ``(line number, fields)`` rows, ``fields[0]`` being the type."""
    out: list[tuple[int, Row]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = next(csv.reader([stripped], skipinitialspace=True, strict=True))
        except csv.Error as exc:
            raise ConfigurationError(f"{source} line {number}: {exc}") from None
        out.append((number, tuple(field.strip() for field in fields)))
    return out


def rows_from(
    policy: str | Iterable[Sequence[str]], *, source: str = "policy"
) -> list[tuple[int, Row]]:
    """Rows from CSV text or from an iterable of sequences (``("p", "alice", "data1", "read")``)."""
    if isinstance(policy, str):
        return parse_policy_text(policy, source=source)
    out: list[tuple[int, Row]] = []
    try:
        items = list(policy)
    except TypeError:
        raise ConfigurationError(
            f"{source} must be CSV text or rows of strings, not {type(policy).__name__}"
        ) from None
    for number, row in enumerate(items, start=1):
        if isinstance(row, str) or not isinstance(row, Sequence):
            raise ConfigurationError(f"{source} row {number}: expected a sequence of strings")
        if not all(isinstance(field, str) for field in row):
            raise ConfigurationError(f"{source} row {number}: every field must be a string")
        out.append((number, tuple(field.strip() for field in row)))
    return out
