"""A real Redis Cluster for the tests: 6 nodes (3 primaries, 3 replicas) on loopback.

:class:`LocalCluster` starts ``redis-server --cluster-enabled yes`` six times on free ports
picked at runtime (client port and cluster-bus port each), joins them with
``redis-cli --cluster create … --cluster-replicas 1``, waits until every node reports
``cluster_state:ok`` and the same slot map, and stops every process it started. The failover
test uses :meth:`LocalCluster.kill` (SIGKILL) and :meth:`LocalCluster.restart` (the killed
node comes back empty and rejoins as a replica of whoever took its slots).

The session fixture ``redis_cluster_url`` in tests/conftest.py wraps it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ClusterUnavailable", "LocalCluster", "free_ports"]

#: cluster-node-timeout (ms): how long a primary may be unreachable before its replica is
#: promoted. Redis's default (15 s) would make the failover test slow; 1 s elects in ~2 s.
NODE_TIMEOUT_MS = 1000
NODES, REPLICAS = 6, 1
START_TIMEOUT = 30.0


class ClusterUnavailable(RuntimeError):
    """redis-server or redis-cli is missing, or the cluster did not come up."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (bound, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _info(port: int, section: str = "cluster") -> dict[str, str]:
    """``CLUSTER INFO`` (or ``INFO <section>``) of one node as a dict; {} if it does not answer."""
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    cmd += ["cluster", "info"] if section == "cluster" else ["info", section]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False).stdout
    except subprocess.TimeoutExpired:
        return {}
    pairs = (line.strip().split(":", 1) for line in out.splitlines() if ":" in line)
    return dict(pairs)  # type: ignore[arg-type]


def _cli(port: int, *args: str, timeout: float = 10) -> str:
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False).stdout


class LocalCluster:
    """Six redis-server processes forming one cluster; ``with LocalCluster() as c: c.url``."""

    def __init__(self, nodes: int = NODES, replicas: int = REPLICAS) -> None:
        self.server = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        if self.server is None or self.cli is None:
            missing = "redis-server" if self.server is None else "redis-cli"
            raise ClusterUnavailable(f"{missing} not found on PATH: cannot start a Redis Cluster")
        self.count = nodes
        self.replicas = replicas
        self.dir = Path(tempfile.mkdtemp(prefix="cos-cluster-"))
        ports = free_ports(2 * nodes)
        self.ports = ports[:nodes]
        self.bus_ports = dict(zip(self.ports, ports[nodes:], strict=True))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        cmd = [
            str(self.server),
            "--port", str(port),
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_ports[port]),
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # a replica takes over however long it was cut off (the test kills primaries)
            "--cluster-replica-validity-factor", "0",
            "--dir", str(node_dir),
            "--save", "",
            "--appendonly", "no",
            "--bind", "127.0.0.1",
            "--daemonize", "no",
            "--logfile", str(node_dir / "redis.log"),
        ]  # fmt: skip
        self.procs[port] = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start(self) -> LocalCluster:
        """Start the nodes, create the cluster and wait until it serves every slot."""
        try:
            for port in self.ports:
                self._spawn(port)
            self._wait(lambda: all(_info(p, "server") for p in self.ports), "nodes to answer")
            create = [str(self.cli), "--cluster", "create"]
            create += [f"127.0.0.1:{p}" for p in self.ports]
            create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise ClusterUnavailable(f"redis-cli --cluster create failed: {done.stdout[-800:]}")
            self.wait_ok()
            # replicas must hold a copy before anyone relies on a failover not losing data
            self._wait(self.replicas_in_sync, "every replica to finish its first sync")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready: object, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.1)
        logs = "; ".join(
            f"{p}: {(self.dir / str(p) / 'redis.log').read_text()[-300:]!r}"
            for p in self.ports
            if (self.dir / str(p) / "redis.log").exists()
        )
        raise ClusterUnavailable(f"Redis Cluster: timed out waiting for {what} ({logs})")

    def wait_ok(self, timeout: float = START_TIMEOUT) -> None:
        """Until every live node says ``cluster_state:ok`` with all 16384 slots served."""

        def ok() -> bool:
            for port in self.live_ports():
                info = _info(port)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
            return True

        self._wait(ok, "cluster_state:ok on every node", timeout)

    def replicas_in_sync(self) -> bool:
        """Every live replica's link to its primary is up (its first full sync is done)."""
        roles = [_info(p, "replication") for p in self.live_ports()]
        replicas = [r for r in roles if r.get("role") == "slave"]
        expected = self.count - self.count // (1 + self.replicas)
        return len(replicas) >= expected and all(
            r.get("master_link_status") == "up" and r.get("master_sync_in_progress") == "0"
            for r in replicas
        )

    def wait_replicated(self, primary: int, timeout: float = START_TIMEOUT) -> None:
        """Until every replica of ``primary`` has acknowledged all of its writes so far."""

        def caught_up() -> bool:
            info = _info(primary, "replication")
            offset = info.get("master_repl_offset")
            links = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()]
            acked = [dict(f.split("=", 1) for f in v.split(",")).get("offset") for v in links]
            return bool(links) and all(a == offset for a in acked)

        self._wait(caught_up, f"the replicas of node {primary} to catch up", timeout)

    def wait_failover(self, dead: int, timeout: float = START_TIMEOUT) -> None:
        """Until every live node flags ``dead`` as failed, another primary serves its slots and
        the cluster is ok again (the replica was promoted)."""

        def promoted() -> bool:
            for port in self.live_ports():
                for line in _cli(port, "cluster", "nodes").splitlines():
                    fields = line.split()
                    if f":{dead}@" in fields[1] and (
                        "fail" not in fields[2].split(",") or len(fields) > 8
                    ):
                        return False  # not yet FAIL, or still listed with slots
            return True

        self._wait(promoted, f"a replica to replace node {dead}", timeout)
        self.wait_ok(timeout)

    def stop(self) -> None:
        """Stop every node this object started and remove their files."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the tests use ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2/``: two seeds, the rest discovered."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2]) + "/"

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def primaries(self) -> list[int]:
        """Ports of the live nodes that are primaries right now."""
        return [p for p in self.live_ports() if _info(p, "replication").get("role") == "master"]

    def primary_of(self, key: str) -> int:
        """Port of the primary serving ``key``'s slot (asked of a live node)."""
        for port in self.live_ports():
            slot = _cli(port, "cluster", "keyslot", key).strip()
            if not slot.isdigit():
                continue
            for line in _cli(port, "cluster", "nodes").splitlines():
                fields = line.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for part in fields[8:]:
                    lo, _, hi = part.partition("-")
                    if lo.isdigit() and int(lo) <= int(slot) <= int(hi or lo):
                        return int(fields[1].split(":")[1].split("@")[0])
        raise ClusterUnavailable(f"no live primary serves the slot of {key!r}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (no shutdown, no goodbye to its replica)."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    def restart(self, port: int, timeout: float = START_TIMEOUT) -> None:
        """Start a killed node again; it rejoins from nodes.conf (a primary that lost its
        slots becomes a replica of the node that took them) and the cluster settles."""
        self._spawn(port)
        self._wait(lambda: bool(_info(port, "server")), f"node {port} to answer", timeout)
        self.wait_ok(timeout)

        def settled() -> bool:
            with contextlib.suppress(Exception):
                return _info(port, "replication").get("master_link_status") == "up"
            return False

        self._wait(settled, f"node {port} to replicate from its new primary", timeout)
