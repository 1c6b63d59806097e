"""The flag stream through a buffering nginx reverse proxy, and across a dropped connection.

nginx (Debian package) runs on a free port with its own configuration in the test's tmp
folder: response buffering on (nginx's default) with large buffers, and an idle read timeout
of 3 s. Through it the snapshot and each change arrive at once (the server's
``X-Accel-Buffering: no`` switches buffering off for the stream), heartbeats keep an
otherwise idle stream open past the idle timeout, and after the proxy dies mid-stream a
reconnection with ``Last-Event-ID`` gets exactly the changes made meanwhile, no more.

(nginx 1.22 forwarded small chunks promptly even with the header ignored when we tried, so
the test does not claim to show a delay without the header; what it shows is promptness,
survival of idle periods and a gapless resume.)
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import skip_or_fail

from ._proc import free_port, running_server

IDLE_TIMEOUT = 3  # nginx proxy_read_timeout, seconds
HEARTBEAT = 1.0  # the server's heartbeat for this test, seconds

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering on;
        proxy_buffer_size 64k;
        proxy_buffers 8 64k;
        proxy_busy_buffers_size 128k;
        proxy_read_timeout {idle}s;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
}}
"""


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None
    )
    if found is None:
        skip_or_fail("nginx is not installed (Debian package `nginx`)")
    assert found is not None
    return found


@contextmanager
def nginx_proxy(binary: str, tmp: Path, upstream: int, port: int) -> Iterator[subprocess.Popen]:
    """nginx in the foreground on 127.0.0.1:``port`` in front of ``upstream``."""
    tmp.mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp, port=port, upstream=upstream, idle=IDLE_TIMEOUT))
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, (tmp / "error.log").read_text()
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


class EventReader:
    """Reads an SSE response on a thread; ``next_event(timeout)`` gives events and comments."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        self.items: queue.Queue[dict[str, Any]] = queue.Queue()
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self._client = httpx2.Client(timeout=httpx2.Timeout(30, read=60))
        self._stream = self._client.stream("GET", url, headers=headers)
        self.response = self._stream.__enter__()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        current: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.items.put({"comment": line[1:].strip(), "at": time.monotonic()})
                elif line == "":
                    if current:
                        self.items.put({**current, "at": time.monotonic()})
                        current = {}
                else:
                    field, _, value = line.partition(":")
                    current[field] = value.removeprefix(" ")
        except httpx2.HTTPError as exc:
            self.items.put({"closed": repr(exc), "at": time.monotonic()})
            return
        self.items.put({"closed": "end of stream", "at": time.monotonic()})

    def next_event(self, timeout: float, named: bool = True) -> dict[str, Any] | None:
        """The next named event (or any item when ``named`` is false); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.items.get(timeout=left)
            except queue.Empty:
                return None
            if not named or "event" in item or "closed" in item:
                return item

    def close(self) -> None:
        try:
            self._stream.__exit__(None, None, None)
        except httpx2.HTTPError:
            pass
        self._client.close()


@pytest.mark.slow
def test_flag_stream_through_buffering_nginx_and_a_dropped_connection(tmp_path):
    binary = _nginx()
    env = {
        "COGNITIONOS_SSE_HEARTBEAT": str(HEARTBEAT),
        "COGNITIONOS_SSE_POLL_INTERVAL": "0.05",
        "COGNITIONOS_SSE_MAX_SECONDS": "120",
    }
    with running_server(tmp_path, env) as srv:
        assert srv.root is not None
        upstream = int(srv.base.rsplit(":", 1)[1])
        port = free_port()
        proxy = f"http://127.0.0.1:{port}"
        api = httpx2.Client(
            base_url=srv.base, headers={"Authorization": f"Bearer {srv.root}"}, timeout=30
        )
        readers: list[EventReader] = []
        try:
            assert api.post("/v1/flags", json={"key": "f1", "default_value": 1}).status_code == 201
            with nginx_proxy(binary, tmp_path / "nginx", upstream, port) as nginx:
                opened = time.monotonic()
                live = EventReader(f"{proxy}/v1/flags/stream", srv.root)
                readers.append(live)
                assert live.response.headers["content-type"].startswith("text/event-stream")
                # a buffered stream would deliver only at its end (SSE_MAX_SECONDS, 120 s)
                snapshot = live.next_event(15.0)
                assert snapshot is not None and snapshot["event"] == "snapshot", snapshot
                assert snapshot["at"] - opened < 10.0
                base = int(snapshot["id"])

                # a change arrives through the proxy at once
                changed_at = time.monotonic()
                assert api.post("/v1/flags/f1/toggle", json={"enabled": False}).status_code == 200
                change = live.next_event(10.0)
                assert change is not None and change.get("event") == "change", change
                assert int(change["id"]) == base + 1
                assert change["at"] - changed_at < 5.0

                # idle for twice nginx's read timeout: heartbeats keep the stream open
                idle_until = time.monotonic() + 2 * IDLE_TIMEOUT
                beats = 0
                while time.monotonic() < idle_until:
                    item = live.next_event(idle_until - time.monotonic(), named=False)
                    if item is None:
                        break
                    assert "closed" not in item, f"the proxy closed an idle stream: {item}"
                    assert "event" not in item, item
                    beats += item.get("comment") == "heartbeat"
                assert beats >= IDLE_TIMEOUT
                assert api.post("/v1/flags", json={"key": "f2", "default_value": 2}).status_code
                after_idle = live.next_event(10.0)
                assert after_idle is not None and after_idle.get("event") == "change"
                assert int(after_idle["id"]) == base + 2

                # the proxy dies mid-stream: the client sees the connection drop
                nginx.send_signal(signal.SIGKILL)
                nginx.wait(timeout=10)
                dropped = live.next_event(10.0)
                assert dropped is not None and "closed" in dropped, dropped
            # while nobody listens, three more changes
            api.post("/v1/flags/f2/toggle", json={"enabled": False})
            api.post("/v1/flags", json={"key": "f3", "default_value": 3})
            api.post("/v1/flags/f1/toggle", json={"enabled": True})
            with nginx_proxy(binary, tmp_path / "nginx", upstream, port):
                resumed = EventReader(f"{proxy}/v1/flags/stream", srv.root, str(base + 2))
                readers.append(resumed)
                got = [resumed.next_event(5.0) for _ in range(3)]
                assert all(e is not None and e.get("event") == "change" for e in got), got
                assert [int(e["id"]) for e in got] == [base + 3, base + 4, base + 5]  # type: ignore[index]
                flags = [json.loads(e["data"])["flag"] for e in got]  # type: ignore[index]
                assert flags == ["f2", "f3", "f1"]
                assert resumed.next_event(1.0) is None  # no duplicate, no snapshot
        finally:
            for reader in readers:
                reader.close()
            api.close()
