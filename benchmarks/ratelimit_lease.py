"""Leased quotas against one round trip per hit: 8 processes hammering 1,000 keys.

Run::

    python benchmarks/ratelimit_lease.py                     # starts its own redis-server
    python benchmarks/ratelimit_lease.py --redis redis://127.0.0.1:6379/15
    COGNITIONOS_REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:7100/ python benchmarks/...

Equal work: in every phase, ``--processes`` worker processes (one thread each) call
``RateLimiter.hit(limit, key)`` for ``--seconds``, each cycling through the same ``--keys``
keys in its own shuffled order, against the same server; the only difference between the
two modes is ``lease=LeasePolicy()``. Before the measured part, every worker makes
``--warm-passes`` passes over its keys in both modes (a key's first hits take its first
slices; their round trips are printed, not measured), then a barrier starts all workers
together. Phases alternate (per hit, leased, per hit, leased) so background load hits both
alike; decisions/s are medians over rounds and the speed-up is the median of per-round ratios.

Reported per mode:

* decisions/s: every worker's decisions (admitted or refused) over the phase's wall time;
* Redis commands per decision: ``INFO commandstats`` deltas over the phase (on the private
  server this script starts by default, nothing else runs there): round trips (``EVALSHA``
  calls sent by clients) and every command executed, those run inside scripts included;
* over-admission: keys "far from their limit" (500,000 per window, never reached) are
  checked for exact accounting instead: after the workers closed (handing back slices) the
  server's count of each key must equal what the workers admitted for it. Keys "at their
  limit" (``--tight`` per window, exhausted within the phase) admit at most the limit: the
  over-admission is ``sum(max(0, admitted - limit)) / (limit x keys)``; the quota left
  unadmitted after close is printed too (under-admission while slices were held).

Windows are clock-aligned fixed windows of a period chosen so that no window rolls during
the run. The run is bounded: ``(2 x rounds + 2) x (warm-up + seconds)`` plus process
start-up; about a minute with the defaults on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

FAR = 500_000


def long_period() -> int:
    """A period whose current window has at least 10 minutes left (no roll during a run)."""
    now = time.time()
    # (2 x FAR + 1) x period in microseconds must stay below 2**53 (Redis exact arithmetic)
    for period in (3600, 7200, 5400, 4000):
        if period - now % period > 600:
            return period
    raise AssertionError("unreachable")


def worker(
    url: str,
    prefix: str,
    leased: bool,
    amount: int,
    period: int,
    nkeys: int,
    seconds: float,
    seed: int,
    warm_passes: int,
    ttl: float | None,
    barrier: Any,
) -> tuple[int, list[int], dict[str, int], float]:
    """One process: warm up, then hit ``nkeys`` keys for ``seconds`` with the others.

    Returns (decisions, admitted per key, lease stats and CPU µs, elapsed s). ``barrier``
    lines the workers and the parent up: after the warm-up (the parent then reads the
    server's counters), after the measured part (read again) and before ``close()``.
    """
    from cognitionos.ratelimit import LeasePolicy, Limit, RateLimiter

    policy = (LeasePolicy() if ttl is None else LeasePolicy(ttl=ttl)) if leased else None
    try:
        limiter = RateLimiter(url, prefix=prefix, lease=policy, timeout=5.0)
        limit = Limit(amount=amount, period=period)
        limiter.test(limit, "k0")  # a limit Redis cannot hold exactly fails here, not later
    except Exception:
        barrier.abort()  # the parent fails at once instead of waiting at the barrier
        raise
    keys = [f"k{i}" for i in range(nkeys)]
    order = list(range(nkeys))
    random.Random(seed).shuffle(order)
    admitted = [0] * nkeys
    hit = limiter.hit
    # warm-up, both modes alike (admissions counted; time, CPU and commands not): the first
    # hits of each key take its first slices, which then grow to the key's rate
    for _ in range(warm_passes):
        for i in order:
            admitted[i] += hit(limit, keys[i]).allowed
    warm = limiter.lease_stats()
    chunks = [order[i : i + 100] for i in range(0, nkeys, 100)]
    barrier.wait()
    decisions = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    end = t0 + seconds
    clock = time.perf_counter
    while clock() < end:
        for chunk in chunks:
            for i in chunk:
                admitted[i] += hit(limit, keys[i]).allowed
            decisions += len(chunk)
            if clock() >= end:
                break
    elapsed = time.perf_counter() - t0
    stats = {k: v - warm.get(k, 0) for k, v in limiter.lease_stats().items()}
    stats["cpu_us"] = round((time.process_time() - c0) * 1e6)
    stats["warm_round_trips"] = warm.get("round_trips", 0)
    barrier.wait()
    barrier.wait()  # the parent has read the counters: hand back (a one-off cost, apart)
    limiter.close()
    return decisions, admitted, stats, elapsed


def prime(_: int) -> int:
    """Import what a worker needs before any phase starts (spawned workers start cold)."""
    import redis  # noqa: F401

    import cognitionos.ratelimit  # noqa: F401

    time.sleep(0.5)  # keeps this worker busy, so each worker gets one of these tasks
    return os.getpid()


def commandstats(clients: list[Any]) -> dict[str, int]:
    """Calls per command summed over the nodes, and the servers' CPU time (µs)."""
    out: dict[str, int] = {}
    cpu = 0.0
    for c in clients:
        for name, row in c.info("commandstats").items():
            out[name] = out.get(name, 0) + int(row["calls"])
        info = c.info("cpu")
        cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    out["server_cpu_us"] = round(cpu * 1e6)
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


def phase(
    pool: Any, args: Any, url: str, clients: list[Any], leased: bool, amount: int, period: int
) -> dict[str, Any]:
    prefix = f"lb{uuid.uuid4().hex[:8]}"
    barrier = args.manager.Barrier(args.processes + 1)
    jobs = [
        pool.apply_async(
            worker,
            (
                url,
                prefix,
                leased,
                amount,
                period,
                args.keys,
                args.seconds,
                seed,
                args.warm_passes,
                args.ttl,
                barrier,
            ),
        )
        for seed in range(args.processes)
    ]
    barrier.wait(timeout=600)
    before = commandstats(clients)  # commands of the measured part
    barrier.wait(timeout=600)
    after = commandstats(clients)
    barrier.wait(timeout=600)
    outs = [j.get(timeout=600) for j in jobs]
    closed = commandstats(clients)
    d = delta(before, after)
    handback = delta(after, closed).get("cmdstat_evalsha", 0)
    server_cpu = d.pop("server_cpu_us", 0)
    for noise in ("cmdstat_info",):
        d.pop(noise, None)
    decisions = sum(o[0] for o in outs)
    wall = max(o[3] for o in outs)
    per_key = [sum(o[1][i] for o in outs) for i in range(args.keys)]
    stats: dict[str, int] = {}
    for o in outs:  # lease counters and client CPU, summed over the workers
        for k, v in o[2].items():
            stats[k] = stats.get(k, 0) + v
    # the server's count of every key, after every worker closed (handed its slices back)
    from cognitionos.ratelimit import Limit, RateLimiter

    probe = RateLimiter(url, prefix=prefix)
    limit = Limit(amount=amount, period=period)
    charged = [amount - probe.stats(limit, f"k{i}").remaining for i in range(args.keys)]
    probe.close()
    for c in clients:
        for name in c.scan_iter(match=f"{prefix}:*", count=1000):
            c.delete(name)
    return {
        "leased": leased,
        "decisions": decisions,
        "rate": decisions / wall,
        "evalsha": d.get("cmdstat_evalsha", 0),
        "commands": sum(d.values()),
        "admitted": sum(per_key),
        "over": sum(max(0, a - amount) for a in per_key),
        "mismatch": sum(abs(c - a) for c, a in zip(charged, per_key, strict=True)),
        "unused": sum(amount - c for c in charged),
        "stats": stats,
        "handback": handback,
        "cmdstats": d,
        # CPU per decision, clients and server together: what a decision costs the machine
        "cpu_us": (stats.get("cpu_us", 0) + server_cpu) / decisions,
    }


def own_server() -> tuple[subprocess.Popen[bytes], str, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server not found: pass --redis URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="lease-bench-")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0", workdir


def run_target(pool: Any, args: Any, label: str, url: str, clients: list[Any]) -> None:
    period = long_period()
    print(
        f"\n## {label}: {args.processes} processes x {args.keys} keys, {args.seconds:.0f} s "
        f"per phase, fixed window of {period} s",
        flush=True,
    )
    far: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    ratios = []
    for r in range(args.rounds):
        pair = []
        for leased in (False, True):
            res = phase(pool, args, url, clients, leased, FAR, period)
            far[leased].append(res)
            pair.append(res["rate"])
            print(
                f"  round {r + 1} {'leased ' if leased else 'per hit'}: "
                f"{res['rate']:,.0f} decisions/s",
                file=sys.stderr,
                flush=True,
            )
        ratios.append(pair[1] / pair[0])
    tight = {
        leased: phase(pool, args, url, clients, leased, args.tight, period)
        for leased in (False, True)
    }

    print(
        "\n| keys | mode | decisions/s (median) | CPU µs / decision (clients + Redis) | "
        "round trips / decision | Redis commands / decision | over-admission | accounting |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for leased in (False, True):
        rows = far[leased]
        rate = statistics.median(r["rate"] for r in rows)
        cpu = statistics.median(r["cpu_us"] for r in rows)
        rt = statistics.median(r["evalsha"] / r["decisions"] for r in rows)
        cmd = statistics.median(r["commands"] / r["decisions"] for r in rows)
        mism = sum(r["mismatch"] for r in rows)
        print(
            f"| far ({FAR:,}/window) | {'leased' if leased else 'per hit'} | {rate:,.0f} | "
            f"{cpu:.2f} | {rt:.4f} | {cmd:.4f} | 0 of {sum(r['admitted'] for r in rows):,} "
            f"(limit never reached) | charged - admitted = {mism} |"
        )
    for leased in (False, True):
        r = tight[leased]
        print(
            f"| at limit ({args.tight}/window) | {'leased' if leased else 'per hit'} | "
            f"{r['rate']:,.0f} | {r['cpu_us']:.2f} | {r['evalsha'] / r['decisions']:.4f} | "
            f"{r['commands'] / r['decisions']:.4f} | {r['over']} of {args.tight * args.keys:,} "
            f"({100 * r['over'] / (args.tight * args.keys):.2f} %) | admitted "
            f"{r['admitted']:,}, left unused after close {r['unused']:,} |"
        )
    cpu_ratios = [a["cpu_us"] / b["cpu_us"] for a, b in zip(far[False], far[True], strict=True)]
    print(
        f"\nspeed-up, far keys (leased / per hit, median of {len(ratios)} rounds): "
        f"decisions/s {statistics.median(ratios):.1f}x "
        f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)}); CPU per decision "
        f"{statistics.median(cpu_ratios):.1f}x less "
        f"(rounds: {', '.join(f'{x:.1f}' for x in cpu_ratios)})"
    )
    s = far[True][-1]["stats"]
    print(
        f"last leased far round: warm-up {s.get('warm_round_trips', 0):,} round trips "
        f"({args.warm_passes} passes); measured {s.get('local', 0):,} local decisions, "
        f"{s.get('round_trips', 0):,} round trips; close() then handed back with "
        f"{far[True][-1]['handback']:,} script calls (one per key with an unused slice, "
        "pipelined; not in the table)"
    )
    # why round trips per decision differ between targets: renewals per key and process in
    # the measured part, and hits decided per renewal (the slices' effective size)
    per_key = [r["stats"].get("round_trips", 0) / (args.processes * args.keys) for r in far[True]]
    per_slice = [
        (r["stats"].get("local", 0) + r["stats"].get("round_trips", 0))
        / max(1, r["stats"].get("round_trips", 0))
        for r in far[True]
    ]
    cmds = far[True][-1]["cmdstats"]
    print(
        f"leased far rounds: renewals per key and process "
        f"{', '.join(f'{x:.2f}' for x in per_key)}; decisions per renewal "
        f"{', '.join(f'{x:,.0f}' for x in per_slice)}; commands of the last one: "
        + ", ".join(f"{k.removeprefix('cmdstat_')} {v:,}" for k, v in sorted(cmds.items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", help="Redis URL (default: start a private redis-server)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tight", type=int, default=20, help="limit of the at-limit keys")
    parser.add_argument(
        "--warm-passes",
        type=int,
        default=5,
        help="unmeasured passes over the keys before each phase (both modes)",
    )
    parser.add_argument("--ttl", type=float, help="LeasePolicy ttl (default: the default)")
    args = parser.parse_args()
    import redis

    proc = workdir = None
    url = args.redis
    if url is None:
        proc, url, workdir = own_server()
    ctx = multiprocessing.get_context("spawn")
    args.manager = ctx.Manager()
    try:
        with ctx.Pool(args.processes) as pool:
            pool.map(prime, range(args.processes), chunksize=1)
            client = redis.Redis.from_url(url)
            run_target(pool, args, f"one Redis ({url})", url, [client])
            client.close()
            cluster = os.environ.get("COGNITIONOS_REDIS_CLUSTER_URL")
            if cluster:
                seeds = cluster.split("://", 1)[1].strip("/").split(",")
                host, port = seeds[0].rsplit(":", 1)
                rc = redis.RedisCluster(host=host, port=int(port))
                nodes = [redis.Redis(host=n.host, port=n.port) for n in rc.get_primaries()]
                run_target(pool, args, f"Redis Cluster ({cluster})", cluster, nodes)
                rc.close()
            else:
                print("\ncluster run skipped: COGNITIONOS_REDIS_CLUSTER_URL is not set")
    finally:
        args.manager.shutdown()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
            shutil.rmtree(workdir or "", ignore_errors=True)


if __name__ == "__main__":
    main()
