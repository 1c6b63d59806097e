"""The field-rule prechecks of the protocol rules change nothing: same matches with and without.

A precheck proves that none of the field rules of a kind can fire on a field, so the rules are
not called for it. Compared here request by request over the CRS regression requests, the dev
payloads and generated requests (control characters, ``\\u`` escapes, ``_charset_`` fields, long
values), with the prechecks on and off.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.waf import Firewall, Request, _protocol
from cognitionos.waf._parse import parse_request
from cognitionos.waf._protocol import FIELD_CHECKS, FIELD_PRECHECKS, ProtocolPolicy, check_protocol

FW = Firewall()
POLICY = ProtocolPolicy(max_arg_value_length=64)


def _matches(req: Request, policy: ProtocolPolicy) -> list[tuple[str, str, str]]:
    parsed = parse_request(req, FW.limits)
    return [(m.rule_id, m.location, m.snippet) for m in check_protocol(req, parsed, policy)]


def _without_prechecks(req: Request, policy: ProtocolPolicy) -> list[tuple[str, str, str]]:
    saved = dict(FIELD_PRECHECKS)
    FIELD_PRECHECKS.clear()
    try:
        return _matches(req, policy)
    finally:
        FIELD_PRECHECKS.update(saved)


def test_the_argument_precheck_covers_every_argument_rule() -> None:
    fn, covers = FIELD_PRECHECKS["arg"]
    assert covers == frozenset(FIELD_CHECKS["arg"])
    assert _protocol._active_prechecks()["arg"] is fn


def test_a_rule_added_later_disables_the_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    def extra(f, field):  # type: ignore[no-untyped-def]
        return ()

    monkeypatch.setitem(FIELD_CHECKS, "arg", [*FIELD_CHECKS["arg"], extra])
    assert "arg" not in _protocol._active_prechecks()


def test_crs_and_dev_requests_same_matches(data_file) -> None:  # type: ignore[no-untyped-def]
    from tests.waf.test_conformance import crs_request, dev_request

    checked = 0
    with data_file("waf/crs_tests.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            req = crs_request(json.loads(line))
            for policy in (FW.policy, POLICY):
                assert _matches(req, policy) == _without_prechecks(req, policy)
            checked += 1
    with data_file("waf/payloads_dev.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 4:
                continue  # a quarter of them: the values are what varies, not the request shape
            row = json.loads(line)
            req = dev_request(row["sent"], row.get("encoding", "raw"))
            assert _matches(req, POLICY) == _without_prechecks(req, POLICY), row["id"]
            checked += 1
    assert checked > 14_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["q", "_charset_", "name", "x"]),
            st.one_of(
                st.text(max_size=80),
                st.sampled_from(["\\u0041", "\\u00e9", "a\x00b", "a\x07b", "utf-8", "koi8-r"]),
                st.text(alphabet="ab\\u0%\x01 ", max_size=90),
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_generated_arguments_same_matches(pairs: list[tuple[str, str]]) -> None:
    query = urllib.parse.urlencode(pairs)
    for req in (
        Request.from_raw("GET", "/?" + query, headers=[("Host", "h"), ("Accept", "*/*")]),
        Request.from_raw(
            "POST",
            "/",
            headers=[("Host", "h"), ("Content-Type", "application/x-www-form-urlencoded")],
            body=query.encode(),
        ),
    ):
        for policy in (FW.policy, POLICY):
            assert _matches(req, policy) == _without_prechecks(req, policy), pairs
