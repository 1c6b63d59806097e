"""Fork safety under the real pre-forking servers: gunicorn --preload, uWSGI, uvicorn --workers.

Each server loads one app module whose ``TracerProvider`` (with its batch export thread) is
built before the workers exist (gunicorn ``--preload``, uWSGI's default of loading the app
in the master, then forking) or in each worker (uvicorn spawns its workers). Requests go to
several workers; every worker's spans must reach an OTLP/HTTP receiver started by the test,
with span ids drawn fresh in each worker (a forked copy of the parent's random state would
give two workers the same ids).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

APP = """
import os

from cognitionos.apm import BatchSpanProcessor, OTLPSpanExporter, TracerProvider
from cognitionos.integrations.apm import TracingMiddleware, TracingWSGIMiddleware

BUILT_IN = os.getpid()
provider = TracerProvider(
    processor=BatchSpanProcessor(
        OTLPSpanExporter(os.environ["TEST_OTLP_URL"], timeout=2.0), schedule_delay=0.2
    ),
    service_name="fork-test",
)
tracer = provider.get_tracer("fork-test")


def _work():
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("worker.pid", os.getpid())
        span.set_attribute("built.pid", BUILT_IN)
    return str(os.getpid()).encode()


def wsgi_inner(environ, start_response):
    body = _work()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


async def asgi_inner(scope, receive, send):
    if scope["type"] != "http":
        return
    body = _work()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


app = TracingWSGIMiddleware(wsgi_inner, tracer_provider=provider)
asgi_app = TracingMiddleware(asgi_inner, tracer_provider=provider)
"""


class _Receiver:
    """Collects the spans of every OTLP/JSON request posted to it."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    for rs in doc.get("resourceSpans", []):
                        for ss in rs.get("scopeSpans", []):
                            spans.extend(ss.get("spans", []))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def work_spans(self) -> list[dict]:
        return [s for s in list(self.spans) if s["name"] == "work"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attr(span: dict, key: str) -> int:
    for a in span.get("attributes", []):
        if a["key"] == key:
            return int(a["value"]["intValue"])
    raise KeyError(key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(server: str, port: int) -> list[str]:
    bindir = Path(sys.executable).parent
    if server == "gunicorn":
        exe = bindir / "gunicorn"
        return [str(exe), "--preload", "-w", "3", "-b", f"127.0.0.1:{port}", "app:app"]
    if server == "uwsgi":
        exe = bindir / "uwsgi"
        # the master loads the app and forks the workers (uWSGI's default); Python threads,
        # and with them the export thread, run only with --enable-threads
        return [
            str(exe),
            "--http-socket",
            f"127.0.0.1:{port}",
            "--wsgi-file",
            "app.py",
            "--callable",
            "app",
            "--master",
            "--processes",
            "3",
            "--enable-threads",
            "--die-on-term",
            "--disable-logging",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app:asgi_app",
        "--workers",
        "3",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


@pytest.mark.parametrize("server", ["gunicorn", "uwsgi", "uvicorn"])
def test_every_worker_of_a_prefork_server_exports_its_spans(server, tmp_path):
    exe = Path(sys.executable).parent / ("uwsgi" if server == "uwsgi" else server)
    if server != "uvicorn" and not exe.exists():
        skip_or_fail(f"{server} is not installed (pip install -e '.[dev]')")
    receiver = _Receiver()
    (tmp_path / "app.py").write_text(APP)
    port = _free_port()
    env = {**os.environ, "TEST_OTLP_URL": receiver.url, "PYTHONPATH": str(tmp_path)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _command(server, port),
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        pids: list[int] = []
        while len(pids) < 60 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=5) as r:
                    pids.append(int(r.read()))
            except OSError:
                assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                time.sleep(0.1)
        assert len(pids) == 60, f"{server} answered {len(pids)} of 60 requests"
        # every request's span arrives (the export thread runs in each worker)
        while len(receiver.work_spans()) < 60 and time.monotonic() < deadline + 15:
            time.sleep(0.1)
        spans = receiver.work_spans()
        assert len(spans) == 60, f"{len(spans)} of 60 spans exported"
        assert sorted(_attr(s, "worker.pid") for s in spans) == sorted(pids)
        assert len({s["spanId"] for s in spans}) == 60  # fresh ids in every worker
        assert len({s["traceId"] for s in spans}) == 60
        built = {_attr(s, "built.pid") for s in spans}
        if server in ("gunicorn", "uwsgi"):
            # one provider, built before the fork, served every worker
            assert len(built) == 1 and built.isdisjoint(pids)
        print(f"\n{server}: {len(set(pids))} workers answered, provider built in {built}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        receiver.close()


def test_the_servers_are_installed_where_services_are_required():
    # CI installs the dev extra; a missing server there must fail, not skip silently
    if os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1":
        for name in ("gunicorn", "uwsgi"):
            assert (Path(sys.executable).parent / name).exists() or shutil.which(name), name
