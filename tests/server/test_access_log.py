"""One JSON access line per request with its trace id; the APM stage shares that trace.

Chain order (outermost first): access log -> body guard -> WAF -> rate limits -> APM -> app.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from cognitionos.apm import parse_traceparent, read_route_latencies
from cognitionos.server._access import ACCESS_LOGGER

from .conftest import bearer


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture
def access_lines():
    logger = logging.getLogger(ACCESS_LOGGER)
    handler = Lines()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _parsed(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def test_one_line_per_request_with_the_callers_trace_id(server, access_lines):
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller_span = "00f067aa0ba902b7"
    r = server.client.get(
        "/v1/whoami",
        headers={**bearer(server.root), "traceparent": f"00-{caller_trace}-{caller_span}-01"},
    )
    assert r.status_code == 200
    (line,) = _parsed(access_lines)
    assert line["event"] == "request"
    assert (line["method"], line["path"], line["route"]) == ("GET", "/v1/whoami", "/v1/whoami")
    assert line["status"] == 200 and line["bytes"] == len(r.content)
    assert line["trace_id"] == caller_trace
    # the APM stage ran: its server span is a new child of the caller's span
    assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"]) and line["span_id"] != caller_span
    assert line["key_id"] == server.root[9:17]
    assert server.root not in json.dumps(line)  # never the secret
    answered = parse_traceparent(r.headers["traceparent"])
    assert answered is not None
    assert (f"{answered[0]:032x}", f"{answered[1]:016x}") == (caller_trace, line["span_id"])


def test_a_trace_id_is_generated_when_the_caller_sends_none_or_a_bad_one(server, access_lines):
    server.client.get("/v1/whoami", headers=bearer(server.root))
    server.client.get("/v1/whoami", headers={**bearer(server.root), "traceparent": "garbage"})
    first, second = _parsed(access_lines)
    for line in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
        assert line["trace_id"] != "0" * 32
    assert first["trace_id"] != second["trace_id"]


def test_refused_requests_are_logged_before_the_apm_stage(server, access_lines):
    attack = server.client.get("/v1/whoami", params={"q": "' or 1=1--"})
    assert attack.status_code == 403
    too_big = server.client.post(
        "/v1/flags",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**bearer(server.root), "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    blocked, oversized = _parsed(access_lines)
    assert (blocked["status"], oversized["status"]) == (403, 413)
    for line in (blocked, oversized):
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
        assert line["span_id"] is None  # refused before tracing: no server span
    assert parse_traceparent(attack.headers["traceparent"])[0] == int(blocked["trace_id"], 16)


def test_the_apm_stage_records_latency_per_route_template(server, access_lines):
    _tenant, owner = server.new_tenant("acme")
    server.client.post("/v1/flags", json={"key": "f1", "default_value": 1}, headers=bearer(owner))
    for user in ("u1", "u2", "u3"):
        r = server.client.post(
            "/v1/flags/f1/evaluate", json={"attributes": {"id": user}}, headers=bearer(owner)
        )
        assert r.status_code == 200
    state = server.state
    state.latency.flush()
    routes = read_route_latencies(state.store)
    assert routes["POST /v1/flags/{key}/evaluate"].count == 3
    assert not any("/f1/" in route for route in routes)  # templates, never raw paths


def test_the_access_log_can_be_switched_off(server_factory, access_lines):
    quiet = server_factory(access_log=False)
    assert quiet.client.get("/v1/whoami", headers=bearer(quiet.root)).status_code == 200
    assert access_lines == []
