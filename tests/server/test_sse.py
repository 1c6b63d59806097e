"""The SSE flag stream against a real uvicorn process: snapshot, changes, heartbeats, resume."""

from __future__ import annotations

import json
import time

import httpx2

from ._proc import running_server


def _events(lines, until):
    """Parse SSE lines; collect events (and comments) until ``until(collected)`` is true."""
    got, current = [], {}
    for line in lines:
        if line.startswith(":"):
            got.append({"comment": line[1:].strip()})
        elif line == "":
            if current:
                got.append(current)
                current = {}
        else:
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
        if until(got):
            return got
    return got


def test_stream_snapshot_changes_heartbeat_and_resume(tmp_path):
    env = {"COGNITIONOS_SSE_HEARTBEAT": "0.5", "COGNITIONOS_SSE_POLL_INTERVAL": "0.05"}
    with running_server(tmp_path, env) as srv:
        auth = {"Authorization": f"Bearer {srv.root}"}
        with httpx2.Client(base_url=srv.base, headers=auth, timeout=10) as api:
            assert api.post("/v1/flags", json={"key": "f1", "default_value": 1}).status_code == 201
            with api.stream("GET", "/v1/flags/stream") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert stream.headers["x-accel-buffering"] == "no"
                assert stream.headers["cache-control"] == "no-cache"
                lines = stream.iter_lines()
                first = _events(lines, lambda g: any(e.get("event") for e in g))
                snapshot = next(e for e in first if e.get("event"))
                assert snapshot["event"] == "snapshot"
                assert [f["key"] for f in json.loads(snapshot["data"])["flags"]] == ["f1"]
                base = int(snapshot["id"])
                # a change made through another connection arrives as the next id
                with httpx2.Client(base_url=srv.base, headers=auth, timeout=10) as other:
                    r = other.post("/v1/flags/f1/toggle", json={"enabled": False})
                    assert r.status_code == 200
                changed = _events(lines, lambda g: any(e.get("event") == "change" for e in g))
                change = next(e for e in changed if e.get("event") == "change")
                assert int(change["id"]) == base + 1
                data = json.loads(change["data"])
                assert data["flag"] == "f1" and data["definition"]["enabled"] is False
                started = time.monotonic()
                beats = _events(lines, lambda g: any(e.get("comment") == "heartbeat" for e in g))
                assert any(e.get("comment") == "heartbeat" for e in beats)
                assert time.monotonic() - started < 5
            # the connection dropped; meanwhile two more changes happen
            api.post("/v1/flags", json={"key": "f2", "default_value": 2})
            api.post("/v1/flags/f1/toggle", json={"enabled": True})
            resume = {"Last-Event-ID": str(base + 1)}
            with api.stream("GET", "/v1/flags/stream", headers=resume) as stream:
                replay = _events(
                    stream.iter_lines(),
                    lambda g: sum(1 for e in g if e.get("event")) >= 2,
                )
        named = [e for e in replay if e.get("event")]
        assert [e["event"] for e in named] == ["change", "change"]  # no snapshot, no gap
        assert [int(e["id"]) for e in named] == [base + 2, base + 3]
        assert [json.loads(e["data"])["flag"] for e in named] == ["f2", "f1"]
