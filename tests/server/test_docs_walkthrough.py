"""docs/server.md's curl walk-through, run against a real ``cognitionos serve`` process.

The server starts in an empty directory on a free loopback port; the bootstrap key is read from
what it prints; the doc's bash blocks then run in order in one ``bash -e`` script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _documents(text: str) -> list:
    """Every JSON document printed one after the other (curl adds no newline)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)


def _walkthrough_blocks() -> list[str]:
    text = DOC.read_text("utf-8").split("## Walk-through with curl", 1)[1]
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_walkthrough_against_uvicorn(tmp_path):
    port = _free_port()
    cli = Path(sys.executable).with_name("cognitionos")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        output = ""
        while time.monotonic() < deadline:
            output = (tmp_path / "server.log").read_text()
            if "Uvicorn running" in output or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert f"listening on http://127.0.0.1:{port}" in output, output
        root = re.search(r"cos_live_[0-9A-Za-z]{46}", output)
        assert root is not None, output
        assert (tmp_path / "cognitionos.db").exists()  # the embedded default: SQLite in the cwd
        blocks = _walkthrough_blocks()
        assert len(blocks) >= 6
        marker = "@@block@@"
        script = "set -euo pipefail\n" + "".join(
            f"echo '{marker}'\n{block}\necho\n" for block in blocks
        )
        result = subprocess.run(
            ["bash", "-c", script],
            env={**env, "BASE": f"http://127.0.0.1:{port}", "ROOT": root.group(0)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        outs = [_documents(o) for o in result.stdout.split(marker)[1:]]
        (whoami,) = outs[0]
        assert whoami["tenant_id"] == "platform" and whoami["role"] == "owner"
        assert outs[1] == []  # the tenant's owner key went into a variable
        created, evaluated = outs[2]
        assert created["key"] == "new-checkout" and evaluated["value"] is True
        assert outs[3][0]["default_value"] is False
        policy, *checks = outs[4]
        assert policy["limits"] == "2/minute"
        assert [c["allowed"] for c in checks] == [True, True, False]
        (refused,) = outs[5]
        assert refused["status"] == 403 and "flags:write" in refused["detail"]
        (verdict,) = outs[6]
        assert verdict["blocked"] is True
        assert any(m["category"] == "sqli" for m in verdict["matches"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
