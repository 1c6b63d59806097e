"""A deliberately vulnerable ASGI app for the scanner benchmark (``waf_scanners.py``).

Never mount this anywhere but loopback. Each page has one classic flaw, built so a scanner can
confirm it from the response alone:

=============  ==========================================================================
``/search``    ``q`` reflected unescaped into HTML (reflected XSS)
``/greet``     ``name`` written into a JavaScript string; ``<``, ``>`` and ``&`` are escaped,
               quotes are not, so only a break-out of the string runs code
``/preview``   ``tpl`` rendered as a Jinja2 template (not sandboxed) with a ``settings``
               object holding ``SECRET_KEY`` and a ``session`` dict (SSTI)
``/fetch``     ``url`` "fetched" server side (SSRF); the fetch is a stub that never opens a
               socket: metadata hosts answer with fake credentials, loopback with a fake
               admin page, a scanner's callback URL is recorded in memory
``/ping``      ``host`` appended to ``ping -c 1``: a tiny shell *emulator* splits on shell
               separators and answers ``id``, ``cat``, ``echo``, ``sleep``, ``env``... with
               fake output (command injection without running anything)
``/file``      ``name`` joined to a static folder and normalised (path traversal); files
               outside it are served from a small fake filesystem (``/etc/passwd``...)
=============  ==========================================================================

The app also plays the scanners' out-of-band endpoint (``/oast/...``): wapiti asks it which
SSRF callbacks arrived. Use ``build_app()`` for the bare app and wrap it in
``FirewallMiddleware`` for the protected run.
"""

from __future__ import annotations

import datetime as _dt
import html
import posixpath
import re
import shlex
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["EXPLOIT_MARKERS", "build_app", "exploited"]

SECRET_KEY = "s3cr3t-vulnapp-key-5f2c"
FAKE_PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
FAKE_WIN_INI = "; for 16-bit app support\n[fonts]\n[extensions]\n[mci extensions]\n[files]\n"
FAKE_METADATA = "ami-id\ninstance-id\niam/security-credentials/vulnapp-role AccessKeyId=ASIAFAKE"
FAKE_ID = "uid=33(www-data) gid=33(www-data) groups=33(www-data)"

#: What a response contains when the page was exploited, per page (used by the benchmark's
#: direct probes and the replay test to prove the bare app is exploitable).
EXPLOIT_MARKERS = {
    "ssti": (SECRET_KEY, "49", "vulnapp-session-token"),
    "ssrf": ("AccessKeyId=ASIAFAKE", "internal admin console"),
    "cmdi": ("uid=33(www-data)", "root:x:0:0", "VULNAPP_ENV=1"),
    "path-traversal": ("root:x:0:0", "[fonts]"),
}

_METADATA_HOSTS = {
    "169.254.169.254",
    "169.254.170.2",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
    "100.100.100.200",
    "fd00:ec2::254",
    "[fd00:ec2::254]",
    "169.254.169.254.nip.io",
}
_LOOPBACK = re.compile(r"^(?:localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[::1?\]|::1|0)$")
_STATIC = {"/srv/app/static/readme.txt": "static readme\n", "/srv/app/static/logo.txt": "LOGO\n"}
_FAKE_FS = {
    "/etc/passwd": FAKE_PASSWD,
    "/etc/hosts": "127.0.0.1 localhost\n",
    "/windows/win.ini": FAKE_WIN_INI,
    "/c:/windows/win.ini": FAKE_WIN_INI,
    "/boot.ini": "[boot loader]\ntimeout=30\n",
}


class _Settings:
    SECRET_KEY = SECRET_KEY
    DEBUG = True

    def __repr__(self) -> str:
        return f"<Settings SECRET_KEY={self.SECRET_KEY!r}>"


def exploited(kind: str, body: str) -> bool:
    """Whether ``body`` (a response of the bare or protected app) shows ``kind`` exploited."""
    if kind == "ssti":
        return SECRET_KEY in body or "vulnapp-session-token" in body or "=49=" in body
    return any(marker in body for marker in EXPLOIT_MARKERS[kind])


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    )


async def _index(request: Request) -> Response:
    forms = "".join(
        f'<form action="/{path}" method="get"><input name="{name}" value="{value}">'
        f'<input type="submit"></form><a href="/{path}?{name}={value}">{path}</a>'
        for path, name, value in (
            ("search", "q", "shoes"),
            ("greet", "name", "anna"),
            ("preview", "tpl", "Hello"),
            ("fetch", "url", "https://example.com/"),
            ("ping", "host", "example.com"),
            ("file", "name", "readme.txt"),
        )
    )
    return _page("vulnapp", forms)


async def _search(request: Request) -> Response:
    q = request.query_params.get("q", "")
    return _page("search", f"<h1>Results</h1><p>You searched for {q}</p>")


async def _greet(request: Request) -> Response:
    name = request.query_params.get("name", "")
    # The classic half-fix: markup characters escaped, quotes left alone.
    safe = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _page(
        "greet", f"<script>var user = '{safe}'; document.title = 'Hello ' + user;</script>"
    )


async def _preview(request: Request) -> Response:
    import jinja2

    tpl = request.query_params.get("tpl", "")
    env = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
    try:
        # Markers around the rendering let a probe tell evaluation (=49=) from plain text.
        out = env.from_string("=" + tpl + "=").render(
            settings=_Settings(),
            session={"user": "anna", "token": "vulnapp-session-token"},
            user={"name": "Anna"},
        )
    except Exception as exc:  # a template error is itself a finding for scanners
        out = f"template error: {type(exc).__name__}"
    return _page("preview", f"<pre>{html.escape(out)}</pre>")


def _stub_fetch(url: str) -> str:
    """The server-side fetch, without any network: answers from fixed fake content."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if _LOOPBACK.match(host) and parts.path.startswith("/oast/ssrf/"):
        # A scanner's callback URL (its out-of-band endpoint is this app): recorded in memory.
        _record_callback(parts.path, url)
        return "callback recorded"
    if host in _METADATA_HOSTS or (parts.netloc or "").lower() in _METADATA_HOSTS:
        return FAKE_METADATA
    if _LOOPBACK.match(host) or host == "localhost.localdomain":
        return "internal admin console"
    if parts.scheme == "file":
        return _FAKE_FS.get(posixpath.normpath(parts.path), "")
    return f"fetched {len(url)} bytes (stub)"


async def _fetch(request: Request) -> Response:
    url = request.query_params.get("url", "")
    return _page("fetch", f"<pre>{html.escape(_stub_fetch(url))}</pre>")


_SEPARATORS = re.compile(r"\|\||&&|[;|&\n`]|\$\(|\)")


def _emulate_shell(line: str) -> str:
    """Output of ``sh -c line`` for a few commands, emulated (nothing is executed)."""
    out: list[str] = []
    for piece in _SEPARATORS.split(line.replace("${IFS}", " ").replace("$IFS", " ")):
        try:
            words = shlex.split(piece)
        except ValueError:
            words = piece.split()
        if not words:
            continue
        cmd, args = posixpath.basename(words[0]), words[1:]
        if cmd == "ping":
            out.append(f"PING {args[-1] if args else ''}: 1 packets transmitted")
        elif cmd == "id":
            out.append(FAKE_ID)
        elif cmd in ("whoami", "who"):
            out.append("www-data")
        elif cmd in ("cat", "more", "less", "head", "tail", "type"):
            for arg in args:
                out.append(_FAKE_FS.get(posixpath.normpath("/" + arg.lstrip("/")), ""))
        elif cmd == "echo":
            out.append(" ".join(args))
        elif cmd in ("env", "set", "printenv"):
            out.append("PATH=/usr/bin:/bin\nVULNAPP_ENV=1")
        elif cmd == "uname":
            out.append("Linux vulnapp 6.1.0 x86_64 GNU/Linux")
        elif cmd == "sleep" and args and args[0].replace(".", "", 1).isdigit():
            # Time-based probes need a real delay; capped so a scan stays bounded.
            time.sleep(min(float(args[0]), 10.0))
    return "\n".join(out)


async def _ping(request: Request) -> Response:
    host = request.query_params.get("host", "")
    return _page("ping", f"<pre>{html.escape(_emulate_shell('ping -c 1 ' + host))}</pre>")


async def _file(request: Request) -> Response:
    name = request.query_params.get("name", "")
    path = posixpath.normpath(posixpath.join("/srv/app/static", name.replace("\\", "/")))
    path = re.sub(r"^/+", "/", path).lower()
    body = _STATIC.get(path) or _FAKE_FS.get(path)
    if body is None:
        return PlainTextResponse(f"not found: {path}", status_code=404)
    return PlainTextResponse(body)


# ------------------------------------------------------------------ scanner callback endpoint

_CALLBACKS: dict[str, dict[str, dict[str, list[dict[str, str]]]]] = defaultdict(
    lambda: defaultdict(lambda: defaultdict(list))
)


def _record_callback(path: str, url: str) -> None:
    # wapiti's layout: /ssrf/<session id>/<path id>/<hex parameter name>/
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 5:
        _, _, session, path_id, hex_param = parts[:5]
        _CALLBACKS[session][path_id][hex_param].append(
            {
                "url": url,
                "date": _dt.datetime.now(_dt.UTC).isoformat(),
                "ip": "127.0.0.1",
                "method": "GET",
            }
        )


async def _oast_results(request: Request) -> Response:
    session = request.query_params.get("session_id", "")
    data: Any = _CALLBACKS.get(session, {})
    return JSONResponse(data)


def build_app() -> Starlette:
    """The vulnerable app (one instance; the callback log is shared by every instance)."""
    return Starlette(
        routes=[
            Route("/", _index),
            Route("/search", _search),
            Route("/greet", _greet),
            Route("/preview", _preview),
            Route("/fetch", _fetch),
            Route("/ping", _ping),
            Route("/file", _file),
            Route("/oast/get_ssrf.php", _oast_results),
        ]
    )
