"""Start ``cognitionos serve`` as a real process on a free loopback port (tests only)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@attrs.frozen
class Running:
    """A started server: its base URL, the bootstrap key it printed (if any) and its log."""

    base: str
    root: str | None
    log: Path
    process: subprocess.Popen


@contextmanager
def running_server(
    cwd: Path, env_extra: dict[str, str] | None = None, port: int | None = None
) -> Iterator[Running]:
    """Run ``cognitionos serve`` in ``cwd`` until the block ends (then terminate it)."""
    port = port or free_port()
    cli = Path(sys.executable).with_name("cognitionos")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITIONOS_")}
    env.update(env_extra or {})
    log_path = cwd / f"server-{port}.log"
    log = log_path.open("w+")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        output = ""
        while time.monotonic() < deadline:
            output = log_path.read_text()
            if "Uvicorn running" in output or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert "Uvicorn running" in output, output
        root = re.search(r"cos_live_[0-9A-Za-z]{46}", output)
        yield Running(f"http://127.0.0.1:{port}", root.group(0) if root else None, log_path, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
