"""``/docs`` renders in headless Chromium with no network but the server: no CDN assets.

Chromium (Debian package ``chromium``) gets a proxy that does not exist for every host but
the server's address, and a resolver that knows no name: anything the page tried to load
from elsewhere would fail. After the page has run, its DOM must list every OpenAPI tag and
every path, and a screenshot is taken (kept in the test's tmp folder).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import httpx2
import pytest

from tests.conftest import skip_or_fail

from ._proc import free_port, running_server


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        skip_or_fail("headless Chromium is not installed (Debian package `chromium`)")
    assert found is not None
    return found


def _offline_browser(binary: str, profile: Path, server_port: int) -> list[str]:
    dead = free_port()  # nothing listens there: every proxied request fails
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile}",
        f"--proxy-server=http://127.0.0.1:{dead}",
        f"--proxy-bypass-list=127.0.0.1:{server_port}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
    ]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_docs_page_renders_every_tag_offline(tmp_path):
    binary = _chromium()
    with running_server(tmp_path) as srv:
        port = int(srv.base.rsplit(":", 1)[1])
        with httpx2.Client(base_url=srv.base, timeout=30) as client:
            page = client.get("/docs")
            schema = client.get("/openapi.json").json()
        assert page.status_code == 200
        # the page itself names only this server's assets
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith("/docs/assets/"), url
        tags = {t["name"] for t in schema.get("tags", [])}
        for operations in schema["paths"].values():
            for op in operations.values():
                tags.update(op.get("tags", []))
        assert len(tags) >= 10

        browser = _offline_browser(binary, tmp_path / "profile", port)
        dom = subprocess.run(
            [*browser, "--dump-dom", f"{srv.base}/docs"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = tmp_path / "docs.png"
        taken = subprocess.run(
            [*browser, "--window-size=1280,2400", f"--screenshot={shot}", f"{srv.base}/docs"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert taken.returncode == 0, taken.stderr[-2000:]
        log = srv.log.read_text()

    html = dom.stdout
    assert "Unable to render" not in html, "Swagger UI could not read the OpenAPI document"
    rendered_tags = set(re.findall(r'data-tag="([^"]+)"', html))
    assert rendered_tags == tags
    rendered_paths = set(re.findall(r'data-path="([^"]+)"', html))
    assert rendered_paths == set(schema["paths"])
    # the assets came from the server (the browser had nowhere else to get them)
    # (the server's access log: one JSON object per request line)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    served = {(x["path"], x["status"]) for x in lines if x.get("event") == "request"}
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert (f"/docs/assets/{asset}", 200) in served
    assert _png_size(shot) == (1280, 2400)
    # a page that did not render is a few KB of white; the rendered one is far larger
    assert shot.stat().st_size > 40_000
