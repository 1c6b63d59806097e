"""Garbage exports and tree heads: a verdict or a ConfigurationError, never a raw exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.audit import SignedTreeHead
from cognitionos.audit.verify import verify_log
from cognitionos.errors import ConfigurationError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
HEAD = SignedTreeHead(1, 0, bytes(32), b"", "hmac-sha256", "x")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        JSON | st.fixed_dictionaries({"index": JSON, "leaf_hash": JSON, "entry": JSON}), max_size=4
    )
)
def test_garbage_entries(entries: list[object]) -> None:
    try:
        verdict = verify_log(entries, HEAD)
    except ConfigurationError:
        return
    assert not verdict.ok


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_garbage_tree_heads(data: object) -> None:
    try:
        SignedTreeHead.from_json(data)
    except ConfigurationError:
        pass
