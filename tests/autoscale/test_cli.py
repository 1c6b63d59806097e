"""``cognitionos autoscale`` and ``cognitionos dr`` through click's runner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cognitionos.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_recommend_json():
    r = _run(
        "autoscale",
        "recommend",
        "--current",
        "10",
        "--cpu-utilization",
        "90",
        "--target",
        "0.5",
        "--max-replicas",
        "30",
        "--json",
    )
    assert r.exit_code == 0, r.output
    # ratio 90/50 = 1.8 -> ceil(18.0) = 18, under the legacy limit max(2*10, 4) = 20
    assert json.loads(r.stdout) == {
        "replicas": 18,
        "reason": "DesiredWithinRange",
        "desired": 18,
        "metric": "cpu",
    }


def test_simulate_json(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text(
        "minute,requests\n" + "".join(f"m{i},{30 if i < 5 else 80}\n" for i in range(20))
    )
    r = _run("autoscale", "simulate", str(trace), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["minutes"] == 20
    assert data["violation_minutes"] >= 1  # the jump at minute 5 is seen late


def test_simulate_bad_trace_is_one_line(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("minute,requests\nm0,lots\n")
    r = _run("autoscale", "simulate", str(trace))
    assert r.exit_code == 1
    assert "not a number" in r.output
    assert "Traceback" not in r.output


def test_dr_plan_exit_codes():
    ok = _run(
        "dr",
        "plan",
        "--size",
        "100GB",
        "--change-rate",
        "1MB/s",
        "--backup-throughput",
        "100MB/s",
        "--restore-throughput",
        "200MB/s",
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["chosen"] == "backup-restore"
    bad = _run(
        "dr",
        "plan",
        "--size",
        "100GB",
        "--change-rate",
        "1MB/s",
        "--backup-throughput",
        "100MB/s",
        "--restore-throughput",
        "200MB/s",
        "--rpo",
        "1",
        "--rto",
        "10",
    )
    assert bad.exit_code == 1


def test_dr_retention_dry_run(tmp_path):
    snaps = [
        {"id": f"s{d}", "time": f"2024-01-{d:02d}T03:00:00Z", "host": "db"} for d in range(1, 11)
    ]
    path = tmp_path / "snaps.json"
    path.write_text(json.dumps(snaps))
    r = _run("dr", "retention", str(path), "--keep-last", "2", "--keep-weekly", "1", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    # last 2: Jan 10 and 9; weekly 1: Jan 10 (ISO week 2 of 2024 is Jan 8-14) already counts
    assert [k["id"] for k in data["keep"]] == ["s10", "s9"]
    assert data["keep"][0]["reasons"] == ["last snapshot", "weekly snapshot"]
    empty = _run("dr", "retention", str(path))
    assert empty.exit_code == 1
    assert "keeps nothing" in empty.output


def test_dr_backup_verify_restore(tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(50)])
    con.commit()
    con.close()
    src, target = f"sqlite:///{db}", f"file://{tmp_path / 'b'}"
    store = ["--store", f"sqlite:///{tmp_path / 'catalog.db'}"]
    r = _run("dr", "backup", src, "--target", target, *store, "--json")
    assert r.exit_code == 0, r.output
    backup_id = json.loads(r.stdout)["id"]
    r = _run("dr", "verify", src, backup_id, "--target", target, *store, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    out = tmp_path / "restored.db"
    r = _run(
        "dr",
        "restore",
        src,
        backup_id,
        "--target",
        target,
        "--to",
        f"sqlite:///{out}",
        *store,
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"] == {"t": 50}
    r = _run("dr", "verify", src, "missing-id", "--target", target, *store)
    assert r.exit_code == 1
    assert "no backup" in r.output


def test_dr_prune_and_status(tmp_path):
    import sqlite3

    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    src, target = f"sqlite:///{db}", f"file://{tmp_path / 'b'}"
    store = ["--store", f"sqlite:///{tmp_path / 'catalog.db'}"]
    ids = [
        json.loads(_run("dr", "backup", src, "--target", target, *store, "--json").stdout)["id"]
        for _ in range(3)
    ]
    r = _run("dr", "status", src, "--target", target, *store, "--json")
    assert r.exit_code == 1  # nothing verified yet: the verified age is unknown, so alert
    assert json.loads(r.stdout)["unverified"] == 3
    r = _run("dr", "prune", src, "--target", target, "--keep-last", "1", *store, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["dry_run"] is True
    assert len(data["remove"]) == 2
    assert set(data["remove"]) | {data["keep"][0]["id"]} == set(ids)


def test_simulate_keda_scale_to_zero_and_infrastructure(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text(
        "minute,requests\n" + "".join(f"m{i},{40 if 30 <= i < 60 else 0}\n" for i in range(120))
    )
    r = _run(
        "autoscale", "simulate", str(trace), "--policy", "keda", "--min-replicas", "0", "--json"
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["scale_from_zero"] == 1
    # metric lag 1 minute + start-up 2 minutes with nothing running
    assert data["cold_start_minutes"] == 3
    r = _run(
        "autoscale",
        "simulate",
        str(trace),
        "--policy",
        "hpa",
        "--pods-per-node",
        "2",
        "--node-startup-delay",
        "180",
        "--spot-rate",
        "60",
        "--spot-share",
        "0.5",
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["node_hours"] > 0 and data["spot_interruptions"] >= 1


def test_simulate_binary_trace_is_one_line(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_bytes(b"minute,requests\n" + bytes(range(128, 256)) * 10)
    r = _run("autoscale", "simulate", str(trace))
    assert r.exit_code == 1
    assert "not UTF-8 text" in r.output and "Traceback" not in r.output
