"""Shared plumbing of the differential tests against the vendor SDKs.

Each differential test compares one generated example through our engine and
through the vendor's SDK and calls :func:`check`. Normally a difference fails
the test. With ``COGNITIONOS_DIFF_TALLY=<file>`` set, differences are counted
instead and every test module appends ``vendor examples agree`` lines to the
file, which is how docs/flags.md's compatibility figures are measured::

    COGNITIONOS_DIFF_TALLY=/tmp/tally pytest -m peers tests/flags -p no:cacheprovider
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

TALLY_FILE = os.environ.get("COGNITIONOS_DIFF_TALLY") or None

#: vendor -> [examples, agreeing examples, examples on a documented difference]
_COUNTS: dict[str, list[int]] = {}
#: vendor -> kinds of difference seen (tally mode only)
DIFFERENCES: dict[str, Counter[str]] = {}
#: vendor -> kind of difference -> its first example (tally mode only)
EXAMPLES: dict[str, dict[str, str]] = {}


def check(vendor: str, ours: Any, theirs: Any, example: Any) -> None:
    """Count one example for ``vendor``; fail on a difference unless tallying."""
    counts = _COUNTS.setdefault(vendor, [0, 0, 0])
    counts[0] += 1
    if ours == theirs:
        counts[1] += 1
        return
    if TALLY_FILE is None:
        raise AssertionError(f"{vendor}: ours {ours!r} != SDK {theirs!r} for {example!r}")
    kind = f"{ours!r} vs {theirs!r}"[:160]
    DIFFERENCES.setdefault(vendor, Counter())[kind] += 1
    EXAMPLES.setdefault(vendor, {}).setdefault(kind, repr(example)[:2000])


def skip_documented(vendor: str) -> None:
    """Count an example that falls on a documented difference (not compared)."""
    _COUNTS.setdefault(vendor, [0, 0, 0])[2] += 1


def write_tally() -> None:
    """Append this process's counts to the tally file (tally mode only)."""
    if TALLY_FILE is None:
        return
    with open(TALLY_FILE, "a", encoding="utf-8") as fh:
        for vendor, (n, agree, documented) in sorted(_COUNTS.items()):
            fh.write(f"{vendor} examples={n} agree={agree} documented-difference={documented}\n")
            for diff, times in DIFFERENCES.get(vendor, Counter()).most_common(8):
                fh.write(f"  {times}x {diff}\n")
                fh.write(f"     e.g. {EXAMPLES.get(vendor, {}).get(diff, '')}\n")
    _COUNTS.clear()
    DIFFERENCES.clear()
    EXAMPLES.clear()
