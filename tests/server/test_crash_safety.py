"""A server killed with SIGKILL during a stream of writes loses none that it acknowledged.

Four client threads create flags, toggle them and create rate-limit policies against a real
``cognitionos serve`` process; once enough writes are acknowledged the process gets SIGKILL
(no shutdown hook runs). A new process on the same database must serve every acknowledged
write, and the audit log must hold an entry for each of them.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from typing import Any

import httpx2
import pytest

from ._proc import running_server
from .test_scale_out import _clean_server_tables

WRITERS = 4
KILL_AFTER = 60  # acknowledged writes before the kill


def _start_writers(
    base: str, root: str, prefix: str, acked: list[tuple[str, str, Any]], failures: list[str]
) -> tuple[list[threading.Thread], threading.Event]:
    """Writers until the server dies, recording (kind, name, expected) for every 2xx answer.

    Returns once ``KILL_AFTER`` writes are acknowledged (the writers keep going).
    """
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        client = httpx2.Client(
            base_url=base, headers={"Authorization": f"Bearer {root}"}, timeout=10
        )
        i = 0
        try:
            while not stop.is_set():
                i += 1
                key = f"{prefix}-w{n}-{i}"
                try:
                    r = client.post("/v1/flags", json={"key": key, "default_value": i})
                    if r.status_code != 201:
                        raise AssertionError(f"flag create answered {r.status_code}: {r.text}")
                    with lock:
                        acked.append(("flag", key, True))
                    r = client.post(f"/v1/flags/{key}/toggle", json={"enabled": False})
                    if r.status_code != 200:
                        raise AssertionError(f"toggle answered {r.status_code}: {r.text}")
                    with lock:
                        acked.append(("flag", key, False))
                    r = client.post(
                        "/v1/ratelimit/policies", json={"name": key, "limits": f"{i}/minute"}
                    )
                    if r.status_code != 201:
                        raise AssertionError(f"policy create answered {r.status_code}: {r.text}")
                    with lock:
                        acked.append(("policy", key, f"{i}/minute"))
                except httpx2.TransportError:
                    return  # the server is gone: this write was never acknowledged
        except AssertionError as exc:
            failures.append(str(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        if not any(t.is_alive() for t in threads):
            break
        time.sleep(0.01)
    return threads, stop


def _check_survivors(base: str, root: str, acked: list[tuple[str, str, Any]]) -> None:
    latest_flag: dict[str, bool] = {}
    policies: dict[str, str] = {}
    for kind, name, expected in acked:
        if kind == "flag":
            latest_flag[name] = expected  # a toggle acknowledged after the create wins
        else:
            policies[name] = expected
    with httpx2.Client(
        base_url=base, headers={"Authorization": f"Bearer {root}"}, timeout=30
    ) as client:
        for key, enabled in latest_flag.items():
            r = client.get(f"/v1/flags/{key}")
            assert r.status_code == 200, f"acknowledged flag {key} lost: {r.text}"
            if enabled is False:
                # an acknowledged toggle must be there; without one, a toggle in flight at
                # the kill may have committed unacknowledged, so either state is right
                assert r.json()["enabled"] is False, f"acknowledged toggle of {key} lost"
        for name, limits in policies.items():
            r = client.get(f"/v1/ratelimit/policies/{name}")
            assert r.status_code == 200, f"acknowledged policy {name} lost: {r.text}"
            assert r.json()["limits"] == limits
        audited: set[tuple[str, str]] = set()
        cursor = -1
        while True:
            page = client.get("/v1/audit", params={"limit": 200, "cursor": cursor}).json()
            audited |= {(e["entry"]["action"], e["entry"]["target"]) for e in page["items"]}
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
    for kind, name, expected in acked:
        if kind == "policy":
            want = ("ratelimit.policy.create", f"policies/{name}")
        elif expected is True:
            want = ("flag.create", f"flags/{name}")
        else:
            want = ("flag.toggle", f"flags/{name}")
        assert want in audited, f"no audit entry for acknowledged {want}"


def _crash_and_restart(tmp_path, env: dict[str, str]) -> None:
    acked: list[tuple[str, str, Any]] = []
    failures: list[str] = []
    prefix = f"c{uuid.uuid4().hex[:6]}"
    with running_server(tmp_path, env) as first:
        assert first.root is not None
        root = first.root
        threads, stop = _start_writers(first.base, root, prefix, acked, failures)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
    assert not failures, failures
    assert len(acked) >= KILL_AFTER, f"only {len(acked)} writes acknowledged before the kill"
    killed_with = first.process.returncode
    assert killed_with == -signal.SIGKILL
    with running_server(tmp_path, env) as second:
        assert second.root is None  # the database was not empty: no new bootstrap
        _check_survivors(second.base, root, acked)


def test_sigkill_loses_no_acknowledged_write_on_sqlite(tmp_path):
    # the server's default: a SQLite file in its working directory (same file after restart)
    _crash_and_restart(tmp_path, {})


@pytest.mark.postgresql
def test_sigkill_loses_no_acknowledged_write_on_postgresql(postgres_url, tmp_path):
    _clean_server_tables(postgres_url)
    _crash_and_restart(tmp_path, {"COGNITIONOS_DATABASE_URL": postgres_url})
