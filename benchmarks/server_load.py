"""Load on a real ``cognitionos serve``: flag evaluation and rate-limit checks (loopback only).

For each backend (SQLite file; PostgreSQL + Redis) and each worker count (1, 2) this starts
``cognitionos serve --workers N`` on a free 127.0.0.1 port, creates a tenant with an owner key,
a flag (a 50% rollout behind a condition) and a rate-limit policy, then drives

- ``POST /v1/flags/load-flag/evaluate`` (1,000 distinct users, cycled), and
- ``POST /v1/ratelimit/check`` (policy ``100/minute``, 1,000 distinct keys, cycled)

for ``--duration`` seconds each (default 60) with ``--connections`` keep-alive connections
spread over ``--clients`` client processes. The load generator is our own: raw HTTP/1.1 on
asyncio streams (no HTTP library in the client's hot loop), one request in flight per
connection (closed loop). Every answer must be 200 with the expected JSON fields; anything
else (other status, bad body, dropped connection) counts as an error and the script exits 1.
Reported: requests/s (after a warm-up that is not counted), p50 and p99 latency.

The client shares the machine with the server: on a small box the numbers measure the pair.
The server runs as shipped (WAF, three rate-limit guards, API-key authentication, access log).

    python benchmarks/server_load.py --duration 60 \\
        --postgres postgresql+psycopg://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379/15
    python benchmarks/server_load.py --duration 10 --backends sqlite --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

USERS = 1000
FLAG = "load-flag"
POLICY = "load-policy"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the server under load --------------------------------------------------------------------


def owner_key(database_url: str) -> str:
    """A fresh tenant with an owner key, written straight into the server's database."""
    from cognitionos.clock import SystemClock
    from cognitionos.server._directory import Directory
    from cognitionos.storage import open_store

    store = open_store(database_url)  # runs the migrations
    try:
        directory = Directory(store.engine, SystemClock())  # type: ignore[attr-defined]
        tenant = directory.create_tenant(f"load-{uuid.uuid4().hex[:8]}")
        _row, token = directory.create_key(
            tenant["tenant_id"], name="load benchmark", role="owner", created_by="benchmark"
        )
        return token
    finally:
        store.close()


class Server:
    """``cognitionos serve`` in a subprocess (stopped with SIGTERM, then SIGKILL)."""

    def __init__(self, workdir: Path, workers: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cli = Path(sys.executable).with_name("cognitionos")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
        full_env.update(env)
        self.log_path = workdir / f"server-{self.port}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(cli), "serve", "--port", str(self.port), "--workers", str(workers)],
            cwd=workdir,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:
                    # every worker must be up, not just the first to accept
                    started = self.log_path.read_text().count("Application startup complete")
                    if r.status == 200 and started >= workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def call(self, method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


# -- the load generator -----------------------------------------------------------------------


def _requests(kind: str, port: int, token: str) -> list[bytes]:
    if kind == "flags":
        path = f"/v1/flags/{FLAG}/evaluate"
        bodies = [
            {"attributes": {"id": f"u{i}", "plan": "pro" if i % 3 else "free"}}
            for i in range(USERS)
        ]
    else:
        path = "/v1/ratelimit/check"
        bodies = [{"policy": POLICY, "key": f"user-{i}"} for i in range(USERS)]
    out = []
    for body in bodies:
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        out.append(head + data)
    return out


def _valid(kind: str, body: bytes) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    if kind == "flags":
        return isinstance(doc, dict) and doc.get("key") == FLAG and "value" in doc
    return isinstance(doc, dict) and isinstance(doc.get("allowed"), bool)


async def _connection(
    port: int,
    requests: list[bytes],
    offset: int,
    kind: str,
    warm_until: float,
    stop_at: float,
    latencies: list[float],
    tally: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                tally["dropped"] = tally.get("dropped", 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            elapsed = time.perf_counter() - start
            status = head[9:12].decode()
            ok = status == "200" and _valid(kind, body)
            if start >= warm_until:
                latencies.append(elapsed)
                key = "ok" if ok else f"error {status}"
                tally[key] = tally.get(key, 0) + 1
                if kind == "ratelimit" and ok and b'"allowed":true' in body:
                    tally["allowed"] = tally.get("allowed", 0) + 1
            if not ok and len(tally.get("sample", "")) == 0:
                tally["sample"] = body[:300].decode(errors="replace")  # type: ignore[assignment]
            if _CLOSE.search(head):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def _client(
    port: int,
    token: str,
    kind: str,
    connections: int,
    offset: int,
    warm_until: float,
    stop_at: float,
    out: Any,
) -> None:
    requests = _requests(kind, port, token)
    latencies: list[float] = []
    tally: dict[str, int] = {}

    async def main() -> None:
        await asyncio.gather(
            *(
                _connection(
                    port,
                    requests,
                    offset + c * 37,
                    kind,
                    warm_until,
                    stop_at,
                    latencies,
                    tally,
                )
                for c in range(connections)
            )
        )

    try:
        asyncio.run(main())
    except Exception as exc:  # reported as an error by the parent, never swallowed
        tally["client failure"] = 1
        tally["sample"] = repr(exc)  # type: ignore[assignment]
    out.put((latencies, tally))


def drive(
    port: int, token: str, kind: str, duration: float, connections: int, clients: int
) -> dict[str, Any]:
    """Closed-loop load for ``duration`` seconds after a warm-up; counts and latencies."""
    warmup = min(5.0, max(1.0, duration / 10))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 1.5  # spawn start-up is not load
    warm_until_wall = start + warmup
    stop_wall = warm_until_wall + duration
    procs = []
    per = [connections // clients + (1 if i < connections % clients else 0) for i in range(clients)]
    for i, n in enumerate(per):
        # perf_counter is per-process: hand over wall-clock deadlines, converted in the child
        p = ctx.Process(
            target=_client_wall,
            args=(port, token, kind, n, i * 500, warm_until_wall, stop_wall, queue),
        )
        p.start()
        procs.append(p)
    latencies: list[float] = []
    tally: dict[str, Any] = {}
    for _ in procs:
        got_lat, got_tally = queue.get(timeout=duration + warmup + 120)
        latencies.extend(got_lat)
        for k, v in got_tally.items():
            tally[k] = v if k == "sample" else tally.get(k, 0) + v
    for p in procs:
        p.join(timeout=30)
    latencies.sort()
    n = len(latencies)
    errors = sum(v for k, v in tally.items() if k not in ("ok", "allowed", "sample"))
    return {
        "requests": n,
        "errors": errors,
        "tally": tally,
        "rps": n / duration,
        "p50_ms": 1000 * latencies[n // 2] if n else float("nan"),
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        "mean_ms": 1000 * statistics.fmean(latencies) if n else float("nan"),
    }


def _client_wall(
    port: int,
    token: str,
    kind: str,
    connections: int,
    offset: int,
    warm_until_wall: float,
    stop_wall: float,
    out: Any,
) -> None:
    now_wall, now_perf = time.time(), time.perf_counter()
    _client(
        port,
        token,
        kind,
        connections,
        offset,
        now_perf + (warm_until_wall - now_wall),
        now_perf + (stop_wall - now_wall),
        out,
    )


# -- the runs ---------------------------------------------------------------------------------


def run_backend(
    name: str, workers: int, env: dict[str, str], database_url: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="cos-load-") as tmp:
        token = owner_key(database_url)
        server = Server(Path(tmp), workers, env)
        try:
            status, body = server.call(
                "POST",
                "/v1/flags",
                token,
                {
                    "key": FLAG,
                    "default_value": False,
                    "rules": [{"condition": {"plan": "pro"}, "value": True, "coverage": 0.5}],
                },
            )
            if status != 201:
                raise RuntimeError(f"flag create: {status} {body}")
            status, body = server.call(
                "POST", "/v1/ratelimit/policies", token, {"name": POLICY, "limits": "100/minute"}
            )
            if status != 201:
                raise RuntimeError(f"policy create: {status} {body}")
            for kind in ("flags", "ratelimit"):
                result = drive(
                    server.port, token, kind, args.duration, args.connections, args.clients
                )
                result.update(backend=name, workers=workers, endpoint=kind)
                rows.append(result)
                print_row(result)
        finally:
            server.stop()
    return rows


HEADER = "| backend | workers | endpoint | requests | errors | requests/s | p50 ms | p99 ms |"


def print_row(r: dict[str, Any]) -> None:
    endpoint = {"flags": "flag evaluate", "ratelimit": "rate-limit check"}[r["endpoint"]]
    print(
        f"| {r['backend']} | {r['workers']} | {endpoint} | {r['requests']} | {r['errors']} | "
        f"{r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |",
        flush=True,
    )
    if r["errors"]:
        print(f"    errors: {r['tally']}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per endpoint")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to run")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COGNITIONOS_POSTGRES_URL"),
        help="PostgreSQL URL [env COGNITIONOS_POSTGRES_URL]",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("COGNITIONOS_REDIS_URL"),
        help="Redis URL [env COGNITIONOS_REDIS_URL]",
    )
    parser.add_argument("--json", action="store_true", help="also print every row as JSON")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers started here are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.duration <= 0 or args.connections < 1 or not 1 <= args.clients <= args.connections:
        parser.error("--duration > 0 and 1 <= --clients <= --connections")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--backends: unknown {sorted(unknown)}")
    if "postgresql" in backends and not (args.postgres and args.redis):
        parser.error("the postgresql backend needs --postgres and --redis (or the env vars)")
    workers = [int(w) for w in args.workers.split(",")]
    # the guard limits stay on (they run on every request) but never refuse the benchmark
    guards = {
        "COGNITIONOS_KEY_RATE_LIMIT": "10000000/minute",
        "COGNITIONOS_TENANT_RATE_LIMIT": "10000000/minute",
        "COGNITIONOS_ANONYMOUS_RATE_LIMIT": "10000000/minute",
    }
    print(
        f"# {args.duration:g} s per endpoint, {args.connections} connections over "
        f"{args.clients} client processes, {os.cpu_count()} CPUs shared by client and server"
    )
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for backend in backends:
        for n in workers:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory(prefix="cos-load-db-") as dbdir:
                    url = f"sqlite:///{dbdir}/load.db"
                    env = {**guards, "COGNITIONOS_DATABASE_URL": url}
                    rows += run_backend("SQLite", n, env, url, args)
            else:
                env = {
                    **guards,
                    "COGNITIONOS_DATABASE_URL": args.postgres,
                    "COGNITIONOS_REDIS_URL": args.redis,
                }
                rows += run_backend("PostgreSQL + Redis", n, env, args.postgres, args)
    if args.json:
        for r in rows:
            print(json.dumps({k: v for k, v in r.items() if k != "tally"}))
    failed = sum(r["errors"] for r in rows)
    if failed:
        print(f"{failed} errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
