"""The shipped table of pattern analyses (cognitionos/waf/_prefilter_table.json) is current.

The table only spares the analysis at rule-set load; these tests prove it changes nothing: it
was computed by the present analysis code, and each entry equals a fresh analysis.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ahocorasick", reason="pyahocorasick (the prefilter) is not installed")

from cognitionos.waf import _prefilter
from cognitionos.waf._ruleset import BUILTIN_RULES


def test_shipped_table_is_current() -> None:
    data = json.loads(_prefilter.TABLE_PATH.read_text(encoding="utf-8"))
    assert data["stamp"] == _prefilter._table_stamp(), (
        "the analysis code changed: regenerate the table with "
        "python -c 'from cognitionos.waf._prefilter import write_table; write_table()'"
    )
    assert _prefilter._table(), "the table is not used"


def test_every_entry_equals_a_fresh_analysis() -> None:
    data = json.loads(_prefilter.TABLE_PATH.read_text(encoding="utf-8"))
    assert len(data["entries"]) > 100
    for kind, text, flags, found in data["entries"]:
        analyse = _prefilter._analyse_required if kind == "r" else _prefilter._analyse_anchored
        fresh = analyse(text, flags)
        assert (None if fresh is None else sorted(fresh)) == found, (kind, text)


def test_table_covers_every_builtin_pattern(tmp_path: Path) -> None:
    # A rewritten table holds exactly what the shipped one holds: no pattern of the built-in
    # detectors is left to be analysed at load.
    out = tmp_path / "table.json"
    _prefilter.write_table(out)
    fresh = json.loads(out.read_text(encoding="utf-8"))
    shipped = json.loads(_prefilter.TABLE_PATH.read_text(encoding="utf-8"))
    assert fresh == shipped


def test_prefilter_built_from_table_equals_one_built_afresh() -> None:
    detectors = {r.detector: r.check for r in BUILTIN_RULES}
    _prefilter._required.cache_clear()
    _prefilter._anchored.cache_clear()
    from_table = _prefilter.LiteralPrefilter(detectors)
    _prefilter._bypass.append(True)
    try:
        _prefilter._required.cache_clear()
        _prefilter._anchored.cache_clear()
        afresh = _prefilter.LiteralPrefilter(detectors)
    finally:
        _prefilter._bypass.pop()
        _prefilter._required.cache_clear()
        _prefilter._anchored.cache_clear()
    assert from_table.always == afresh.always
    assert from_table.bits == afresh.bits
    assert dict(from_table._automaton.items()) == dict(afresh._automaton.items())
    assert from_table._prefix_bits == afresh._prefix_bits
    assert from_table._stems == afresh._stems


@pytest.mark.parametrize(
    "value", ["1 and 1 not between 0 and 1", "2 or 3 like 3", "1 xor 2 glob 2"]
)
def test_sql_word_comparison_gate_is_in_the_prefilter(value: str) -> None:
    # The SQL gate also opens on a logic word before a comparison word (no punctuation, no
    # keyword of _PREFILTER): the prefilter must not skip the SQL detector on such a value.
    from cognitionos.waf import Firewall

    short = Firewall().inspect_value(value)
    full = Firewall(shortcuts=False).inspect_value(value)
    assert full.blocked
    assert (short.blocked, short.score, short.rule_ids) == (
        full.blocked,
        full.score,
        full.rule_ids,
    )
