"""Run sqlmap against a deliberately injectable app, bare and behind FirewallMiddleware.

    python benchmarks/waf_sqlmap.py [--tampers between,equaltolike,...] [--timeout 300]
                                    [--record tests/waf/data/sqlmap_requests.jsonl]

The app (built here, loopback only) pastes the numeric ``id`` query parameter into SQLite
SQL unquoted (``SELECT name, price FROM items WHERE id = <id>``), the classic numeric-context
injection. Two copies are served on free 127.0.0.1 ports: one bare, one behind
``FirewallMiddleware(Firewall())`` with the default settings. sqlmap (PyPI ``sqlmap``, not a
dependency of the package: ``pip install sqlmap``) runs against each copy once with no tamper
script and once per tamper script, with ``--batch``, no session reuse and a wall-clock bound
per run. The report says, per run, whether sqlmap found an injectable parameter and which
techniques it confirmed. A hand-written boolean-blind extractor then tries to read the first
user's password one character at a time, in the comparison shapes of ``EXTRACTION_SHAPES``.

Target: every bare run finds the injection (the app is injectable, with that tamper too) and
every bare extraction reads the password; no run behind the WAF finds the injection and no
extraction behind it reads a character.

``--record PATH`` writes the distinct requests of the bare sqlmap runs whose ``id`` ran as SQL
and was more than a number (the injections that worked) into a JSON-lines file, one
``{"tamper", "target"}`` object per line; ``tests/waf/test_sqlmap_replay.py`` replays that
recording through the firewall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

#: Tamper scripts whose output SQLite still runs as SQL, so the bare app stays injectable.
DEFAULT_TAMPERS = (
    "between",
    "equaltolike",
    "space2comment",
    "space2randomblank",
    "space2dash",
    "multiplespaces",
    "randomcase",
    "lowercase",
    "uppercase",
    "charencode",
    "commentbeforeparentheses",
    "ifnull2casewhenisnull",
    "unionalltounion",
)

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

Scope = dict[str, Any]


class VulnerableApp:
    """A pure-ASGI app with a numeric SQL injection on ``GET /item?id=``; logs every request."""

    def __init__(self, log: list[tuple[str, bool]] | None = None) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.Lock()
        self.log = log
        self.db.executescript(
            """
            CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, password TEXT);
            INSERT INTO items VALUES (1, 'lamp', 19.5), (2, 'desk', 120.0), (3, 'chair', 45.0);
            INSERT INTO users VALUES (1, 'admin', 's3cr3t-admin'), (2, 'alice', 'wonderland');
            """
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope.get("raw_path", b"/").decode("latin-1") + "?" + query
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        item_id = params.get("id", ["1"])[0]
        status = 200
        try:
            with self.lock:
                # Deliberately vulnerable: the value is pasted into the SQL text unquoted.
                rows = self.db.execute(
                    "SELECT name, price FROM items WHERE id = " + item_id
                ).fetchall()
            body = "<html><body><h1>Items</h1><ul>" + "".join(
                f"<li>{name}: {price}</li>" for name, price in rows
            )
            body += "</ul></body></html>"
        except sqlite3.Error as exc:
            status = 500
            body = f"<html><body>SQL error: {exc}</body></html>"
        if self.log is not None:
            # (request target, whether the value ran as SQL): what the recording keeps
            self.log.append((target, status == 200))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: Any) -> tuple[int, Any]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; returns (port, server)."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return port, server


def run_sqlmap(port: int, tamper: str | None, timeout: float, workdir: Path) -> dict[str, Any]:
    """One bounded sqlmap run; what it concluded."""
    exe = shutil.which("sqlmap") or str(Path(sys.executable).with_name("sqlmap"))
    out_dir = Path(tempfile.mkdtemp(dir=workdir))
    cmd = [
        exe,
        "-u",
        f"http://127.0.0.1:{port}/item?id=1",
        "--batch",
        "--flush-session",
        "--disable-coloring",
        f"--output-dir={out_dir}",
        "--timeout=10",
        "--retries=0",
        # sqlmap's own User-Agent is a scanner signature (rule 913100): blocked on the first
        # request, which would test the scanner rule, not SQL injection detection. An attacker
        # sends a browser's.
        f"--user-agent={BROWSER_UA}",
    ]
    if tamper:
        cmd.append(f"--tamper={tamper}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        output = proc.stdout + proc.stderr
        timed_out = False
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        timed_out = True
    techniques = re.findall(r"^\s*Type: (.+)$", output, re.M)
    payloads = re.findall(r"^\s*Payload: (.+)$", output, re.M)
    injectable = "identified the following injection point" in output
    return {
        "tamper": tamper or "(none)",
        "injectable": injectable,
        "techniques": techniques,
        "payloads": payloads,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - t0, 1),
        "waf_noticed": "protected by some kind of WAF" in output,
    }


#: Hand-written boolean-blind extraction of the first user's password, one request per guess,
#: in the shapes that passed the WAF before: comparisons by LIKE, GLOB, BETWEEN and NOT BETWEEN
#: instead of "=", and a whole subquery as the numeric value. ``{p}`` is the 1-based position,
#: ``{c}`` the guessed character, ``{o}`` its code point (``{o1}``/``{o2}`` one below/above),
#: ``{prefix}`` the known prefix + guess.
EXTRACTION_SHAPES = {
    "like": "1 AND substr((SELECT password FROM users LIMIT 1),{p},1) LIKE '{c}'",
    "glob": "1 AND substr((SELECT password FROM users LIMIT 1),{p},1) GLOB '{c}'",
    "between": (
        "1 AND unicode(substr((SELECT password FROM users LIMIT 1),{p},1)) BETWEEN {o} AND {o}"
    ),
    "not-between": (
        "1 AND unicode(substr((SELECT password FROM users LIMIT 1),{p},1)) NOT BETWEEN 0 AND {o1}"
        " AND unicode(substr((SELECT password FROM users LIMIT 1),{p},1)) NOT BETWEEN {o2} AND 999"
    ),
    "subquery-glob": "(SELECT id FROM users WHERE password GLOB '{prefix}*')",
    "subquery-like": "(SELECT id FROM users WHERE password LIKE '{prefix}%')",
}
_CHARSET = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def extract_password(port: int, shape: str, max_len: int = 16) -> tuple[str, int, int]:
    """Extract the first password through ``shape``; returns (extracted, requests, blocked)."""
    import urllib.error
    import urllib.request

    template = EXTRACTION_SHAPES[shape]
    found = ""
    requests = blocked = 0
    for position in range(1, max_len + 1):
        for char in _CHARSET:
            value = template.format(
                p=position,
                c=char,
                o=ord(char),
                o1=ord(char) - 1,
                o2=ord(char) + 1,
                prefix=found + char,
            )
            url = f"http://127.0.0.1:{port}/item?id=" + urllib.parse.quote(value)
            req = urllib.request.Request(url, headers={"User-Agent": BROWSER_UA})
            requests += 1
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    page = resp.read().decode()
            except urllib.error.HTTPError as exc:
                blocked += exc.code == 403
                continue
            if "lamp" in page:  # the true branch shows item 1
                found += char
                break
        else:
            break
    return found, requests, blocked


_PLAIN_NUMBER = re.compile(r"\s*[-+]?\d+(?:\.\d+)?\s*")


def is_injection(target: str, executed: bool) -> bool:
    """A request whose ``id`` ran as SQL and is more than a number: an injection that worked."""
    query = urllib.parse.urlsplit(target).query
    value = urllib.parse.parse_qs(query, keep_blank_values=True).get("id", ["1"])[0]
    return executed and _PLAIN_NUMBER.fullmatch(value) is None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tampers", default=",".join(DEFAULT_TAMPERS))
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock bound per run (s)")
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--bare-only", action="store_true")
    ap.add_argument("--waf-only", action="store_true")
    ap.add_argument("--no-sqlmap", action="store_true", help="only the hand-written extraction")
    ap.add_argument("--record", type=Path, help="write the bare app's attack requests here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from cognitionos.integrations.waf import FirewallMiddleware
    from cognitionos.waf import Firewall

    bare_log: list[tuple[str, bool]] = []
    bare_port, bare_server = serve(VulnerableApp(bare_log))
    guarded_port, guarded_server = serve(
        FirewallMiddleware(VulnerableApp(), Firewall(paranoia=args.paranoia))
    )
    tampers: list[str | None] = [None, *[t for t in args.tampers.split(",") if t]]
    if args.no_sqlmap:
        tampers = []
    results: list[dict[str, Any]] = []
    recorded: list[tuple[str, str, bool]] = []  # (tamper, target, ran as SQL) of bare runs
    with tempfile.TemporaryDirectory(prefix="waf_sqlmap_") as tmp:
        workdir = Path(tmp)
        for tamper in tampers:
            for side, port in (("bare", bare_port), ("waf", guarded_port)):
                if (side == "bare" and args.waf_only) or (side == "waf" and args.bare_only):
                    continue
                logged = len(bare_log)
                result = run_sqlmap(port, tamper, args.timeout, workdir)
                result["side"] = side
                if side == "bare":
                    recorded.extend((result["tamper"], *entry) for entry in bare_log[logged:])
                results.append(result)
                print(
                    f"{side:<5}{result['tamper']:<28}"
                    f"{'INJECTABLE' if result['injectable'] else 'not injectable':<16}"
                    f"{result['seconds']:>7.1f}s"
                    f"{'  (timed out)' if result['timed_out'] else ''}"
                    f"  {'; '.join(result['techniques'])}",
                    flush=True,
                )
    extraction: list[dict[str, Any]] = []
    for shape in EXTRACTION_SHAPES:
        for side, port in (("bare", bare_port), ("waf", guarded_port)):
            if (side == "bare" and args.waf_only) or (side == "waf" and args.bare_only):
                continue
            found, sent, blocked = extract_password(port, shape)
            extraction.append(
                {
                    "side": side,
                    "shape": shape,
                    "extracted": found,
                    "requests": sent,
                    "blocked": blocked,
                }
            )
            print(
                f"{side:<5}{'extract ' + shape:<28}{found!r:<16}"
                f"{sent:>7} requests, {blocked} blocked",
                flush=True,
            )
    bare_server.should_exit = True
    guarded_server.should_exit = True

    bare = [r for r in results if r["side"] == "bare"]
    waf = [r for r in results if r["side"] == "waf"]
    print()
    if bare:
        print(f"bare app: injectable in {sum(r['injectable'] for r in bare)}/{len(bare)} runs")
    if waf:
        print(f"behind the WAF: injectable in {sum(r['injectable'] for r in waf)}/{len(waf)} runs")
        for r in waf:
            for payload in r["payloads"]:
                print(f"  passed ({r['tamper']}): {payload}")
    if args.record:
        seen: set[str] = set()
        lines = []
        for tamper, target, executed in recorded:
            if target not in seen and is_injection(target, executed):
                seen.add(target)
                lines.append(json.dumps({"tamper": tamper, "target": target}))
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"recorded {len(lines)} distinct attack requests to {args.record}")
    if args.json:
        print(json.dumps({"sqlmap": results, "extraction": extraction}, indent=2))


if __name__ == "__main__":
    main()
