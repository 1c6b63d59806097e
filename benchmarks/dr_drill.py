"""Restore drills on SQLite, PostgreSQL and Redis: measured backup, restore and RPO/RTO.

Run:  python benchmarks/dr_drill.py [--rows 100000] [--postgres URL] [--repeat 3]

For each store the same data (``--rows`` rows of (int, 40-char text, float), or as many Redis
hashes) is written, then ``BackupManager.drill()`` runs ``--repeat`` times: backup, restore
into a scratch target (temporary file / scratch database / scratch redis-server), verify
(integrity, row counts, content digests). Printed: median backup seconds, median restore +
verify seconds, backup size, measured RPO/RTO for a 15-minute schedule with the default
detection 60 s + provisioning 300 s + DNS 60 s. The baseline is the bare tool on the same data
in the same run (SQLite backup API alone, ``pg_dump -Fc`` alone, ``BGSAVE`` alone): the ratio
is what cataloguing, checksums and digests add to taking the backup.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cognitionos.dr import BackupManager


def _drills(mgr: BackupManager, repeat: int) -> list[object]:
    return [mgr.drill(interval=900) for _ in range(repeat)]


def _report(store: str, reports: list[object], bare: list[float]) -> None:
    b = statistics.median(r.backup_seconds for r in reports)  # type: ignore[attr-defined]
    rs = statistics.median(r.restore_seconds for r in reports)  # type: ignore[attr-defined]
    last = reports[-1]
    ok = all(r.verified for r in reports)  # type: ignore[attr-defined]
    base = statistics.median(bare)
    print(
        f"{store:<11} {last.size:>12,} {b:>9.3f} {base:>9.3f} {b / base:>6.2f}x "  # type: ignore[attr-defined]
        f"{rs:>10.3f} {last.measured_rpo:>9.1f} {last.measured_rto:>9.1f} {ok!s:>8}"  # type: ignore[attr-defined]
    )


def sqlite_case(tmp: Path, rows: int, repeat: int) -> None:
    db = tmp / "app.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, x REAL)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", ((i, f"{i:040d}", i / 7) for i in range(rows))
    )
    con.commit()
    con.close()
    bare = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        src, dst = sqlite3.connect(db), sqlite3.connect(tmp / "bare.db")
        src.backup(dst)
        dst.close()
        src.close()
        bare.append(time.perf_counter() - t0)
        (tmp / "bare.db").unlink()
    with BackupManager(f"sqlite:///{db}", target=f"file://{tmp / 'sqlite-backups'}") as mgr:
        _report("sqlite", _drills(mgr, repeat), bare)


def postgres_case(url: str, tmp: Path, rows: int, repeat: int) -> None:
    import psycopg

    parts = urlsplit(url)
    libpq = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
    schema = f"dr_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.t (id int PRIMARY KEY, body text, x float8)")
        con.execute(
            f"INSERT INTO {schema}.t SELECT g, lpad(g::text, 40, '0'), g / 7.0 "
            f"FROM generate_series(1, {rows}) g"
        )
    try:
        bare = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(
                ["pg_dump", "-Fc", "--no-owner", f"--file={tmp / 'bare.pgdump'}", libpq],
                check=True,
                capture_output=True,
            )
            bare.append(time.perf_counter() - t0)
        with BackupManager(url, target=f"file://{tmp / 'pg-backups'}") as mgr:
            _report("postgresql", _drills(mgr, repeat), bare)
    finally:
        with psycopg.connect(libpq, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def redis_case(tmp: Path, rows: int, repeat: int) -> None:
    import redis

    from cognitionos.dr._redis import scratch_redis

    with scratch_redis(None, db=0) as url:  # a redis-server of our own on a free port
        r = redis.Redis.from_url(url)
        pipe = r.pipeline(transaction=False)
        for i in range(rows):
            pipe.hset(f"row:{i}", mapping={"body": f"{i:040d}", "x": i / 7})
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        bare = []
        for _ in range(repeat):
            before = r.lastsave()
            while r.time()[0] <= before.timestamp():
                time.sleep(0.05)
            t0 = time.perf_counter()
            r.bgsave()
            while r.lastsave() <= before or r.info("persistence")["rdb_bgsave_in_progress"]:
                time.sleep(0.01)
            bare.append(time.perf_counter() - t0)
        with BackupManager(url, target=f"file://{tmp / 'redis-backups'}") as mgr:
            _report("redis", _drills(mgr, repeat), bare)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgres", default=None, help="postgresql+psycopg://... (a test database)")
    args = ap.parse_args()
    print(
        f"{'store':<11} {'bytes':>12} {'backup s':>9} {'bare s':>9} {'ratio':>7} "
        f"{'restore s':>10} {'RPO s':>9} {'RTO s':>9} {'verified':>8}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        (tmp / "s").mkdir()
        sqlite_case(tmp / "s", args.rows, args.repeat)
        if args.postgres:
            (tmp / "p").mkdir()
            postgres_case(args.postgres, tmp / "p", args.rows, args.repeat)
        else:
            print("postgresql: skipped (no --postgres)", file=sys.stderr)
        (tmp / "r").mkdir()
        redis_case(tmp / "r", args.rows, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
