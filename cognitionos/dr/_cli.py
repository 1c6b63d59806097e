"""``cognitionos dr``: RPO/RTO plans and retention dry runs."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import click

from cognitionos._cli_common import FINITE, CommandGroup, echo_json, json_option, note, store_option
from cognitionos.errors import ConfigurationError

_UNITS = {
    "": 1,
    "k": 1e3,
    "m": 1e6,
    "g": 1e9,
    "t": 1e12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


def _bytes(text: str, name: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?)?b?(?:/s)?\s*", text, re.IGNORECASE)
    if not m:
        raise ConfigurationError(f"{name}: not a size like 100GB or 50MB/s: {text!r}")
    return float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]


#: where the backup files are (every command that reads or writes backups)
target_option = click.option(
    "--target", required=True, help="Directory of the backup files (a path or file:///directory)."
)


@click.group(cls=CommandGroup)
def dr() -> None:
    """Disaster recovery: RPO/RTO plans, retention dry runs, verified backups."""


@dr.command()
@click.option("--size", required=True, help="Data size, e.g. 100GB.")
@click.option("--change-rate", required=True, help="Changed bytes per second, e.g. 1MB/s.")
@click.option("--backup-throughput", required=True, help="e.g. 200MB/s.")
@click.option("--restore-throughput", required=True, help="e.g. 150MB/s.")
@click.option(
    "--replay-throughput", default=None, help="Log/incremental replay (default: restore)."
)
@click.option("--rpo", type=FINITE, default=900.0, show_default=True, help="Seconds.")
@click.option("--rto", type=FINITE, default=3600.0, show_default=True, help="Seconds.")
@click.option("--replication-lag", type=FINITE, default=5.0, show_default=True)
@click.option("--detection", type=FINITE, default=60.0, show_default=True)
@click.option("--provisioning", type=FINITE, default=300.0, show_default=True)
@click.option("--dns", type=FINITE, default=60.0, show_default=True)
@json_option
def plan(
    size: str,
    change_rate: str,
    backup_throughput: str,
    restore_throughput: str,
    replay_throughput: str | None,
    rpo: float,
    rto: float,
    replication_lag: float,
    detection: float,
    provisioning: float,
    dns: float,
    as_json: bool,
) -> None:
    """The cheapest DR tier meeting RPO/RTO and its schedule; exit 1 when none does."""
    from cognitionos.dr import plan_recovery

    result = plan_recovery(
        size_bytes=_bytes(size, "--size"),
        change_rate=_bytes(change_rate, "--change-rate"),
        backup_throughput=_bytes(backup_throughput, "--backup-throughput"),
        restore_throughput=_bytes(restore_throughput, "--restore-throughput"),
        replay_throughput=_bytes(replay_throughput, "--replay-throughput")
        if replay_throughput
        else None,
        rpo=rpo,
        rto=rto,
        replication_lag=replication_lag,
        detection_time=detection,
        provisioning_time=provisioning,
        dns_time=dns,
    )
    if as_json:
        echo_json(result.as_dict())
    else:
        for t in result.tiers:
            state = "ok " if t.feasible else "no "
            click.echo(
                f"{state} {t.tier:<15} worst RPO {t.rpo:>10.0f} s  worst RTO {t.rto:>10.0f} s"
            )
            if t.incremental_interval:
                click.echo(
                    f"      full every {t.full_interval:.0f} s, "
                    f"incremental every {t.incremental_interval:.0f} s"
                )
            if t.log_shipping_interval:
                click.echo(
                    f"      base backup every {t.full_interval:.0f} s, "
                    f"ship logs every {t.log_shipping_interval:.0f} s"
                )
            for r in t.reasons:
                click.echo(f"      because {r}")
    if result.chosen is None:
        note("no tier meets both targets")
        raise SystemExit(1)
    note(f"chosen: {result.chosen.tier}")


@dr.command()
@click.argument("snapshots", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(["restic", "borg"]), default="restic", show_default=True)
@click.option("--keep-last", type=int)
@click.option("--keep-hourly", type=int)
@click.option("--keep-daily", type=int)
@click.option("--keep-weekly", type=int)
@click.option("--keep-monthly", type=int)
@click.option("--keep-yearly", type=int)
@click.option("--keep-within", default=None, help="e.g. 1y2m3d4h")
@click.option("--group-by", default="host,paths", show_default=True)
@json_option
def retention(
    snapshots: str,
    mode: str,
    keep_last: int | None,
    keep_hourly: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    keep_yearly: int | None,
    keep_within: str | None,
    group_by: str,
    as_json: bool,
) -> None:
    """Dry run: which snapshots (a JSON list of {id, time, host?, paths?, tags?}) a policy keeps."""
    from cognitionos.dr import RetentionPolicy, Snapshot, apply_retention

    with open(snapshots, encoding="utf-8") as fh:
        try:
            raw = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{snapshots}: not JSON: {exc}") from None
    try:
        snaps = [
            Snapshot(
                id=str(s["id"]),
                time=datetime.fromisoformat(str(s["time"]).replace("Z", "+00:00")),
                host=s.get("host", ""),
                paths=tuple(s.get("paths") or ()),
                tags=tuple(s.get("tags") or ()),
            )
            for s in raw
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{snapshots}: each snapshot needs an id and an ISO time ({exc})"
        ) from None
    policy = RetentionPolicy(
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        keep_within=keep_within,
        group_by=tuple(k for k in group_by.split(",") if k),
    )
    result = apply_retention(snaps, policy, mode=mode)  # type: ignore[arg-type]
    keep: list[dict[str, Any]] = [
        {"id": r.snapshot.id, "time": r.snapshot.time.isoformat(), "reasons": list(r.matches)}
        for r in result.reasons
    ]
    remove = [{"id": s.id, "time": s.time.isoformat()} for s in result.remove]
    data = {"keep": keep, "remove": remove}
    if as_json:
        echo_json(data)
        return
    for k in keep:
        click.echo(f"keep   {k['id']}  {k['time']}  {', '.join(k['reasons'])}")
    for r in remove:
        click.echo(f"remove {r['id']}  {r['time']}")
    note(f"{len(result.keep)} kept, {len(result.remove)} to remove (dry run: nothing deleted)")


def _manager(source: str, target: str, store_url: str | None, scratch: str | None = None) -> Any:
    from cognitionos._cli_common import pick_store
    from cognitionos.dr import BackupManager

    return BackupManager(source, target=target, catalog=pick_store(store_url), scratch=scratch)


scratch_option = click.option(
    "--scratch",
    default=None,
    metavar="URL",
    help="PostgreSQL server where the check restores (default: the source's; it must not "
    "archive WAL).",
)


@dr.command()
@click.argument("source")
@target_option
@store_option
@json_option
def backup(source: str, target: str, store_url: str | None, as_json: bool) -> None:
    """Back up SOURCE (sqlite:///file.db, postgresql://... or redis://...) into the catalog."""
    with _manager(source, target, store_url) as mgr:
        rec = mgr.backup()
    if as_json:
        echo_json({"id": rec.id, "path": rec.path, "size": rec.size, "sha256": rec.sha256})
        return
    click.echo(rec.id)
    note(f"{rec.size} bytes at {rec.path}; unverified until `dr verify {rec.id}`")


@dr.command()
@click.argument("source")
@click.argument("backup_id")
@target_option
@scratch_option
@store_option
@json_option
def verify(
    source: str,
    backup_id: str,
    target: str,
    scratch: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Restore BACKUP_ID to a scratch target and compare every table; exit 1 if it differs."""
    with _manager(source, target, store_url, scratch) as mgr:
        result = mgr.verify(backup_id)
    if as_json:
        echo_json(
            {
                "id": result.id,
                "ok": result.ok,
                "problems": list(result.problems),
                "restore_seconds": result.restore_seconds,
            }
        )
    else:
        click.echo("verified" if result.ok else "FAILED")
        for p in result.problems:
            note(p)
    if not result.ok:
        raise SystemExit(1)


@dr.command()
@click.argument("source")
@click.argument("backup_id")
@target_option
@click.option("--to", "to", required=True, help="Where to restore (URL of the same kind).")
@store_option
@json_option
def restore(
    source: str, backup_id: str, target: str, to: str, store_url: str | None, as_json: bool
) -> None:
    """Restore BACKUP_ID of SOURCE into --to (checksum checked first)."""
    with _manager(source, target, store_url) as mgr:
        tables = mgr.restore(backup_id, to=to)
        saved = mgr.saved_copy
    if saved is not None:
        note(f"the database that was at {to} is saved as {saved}")
    if as_json:
        doc = {"id": backup_id, "tables": {k: v[0] for k, v in tables.items()}}
        echo_json({**doc, "saved_copy": None if saved is None else str(saved)})
        return
    for name, (rows, _digest) in sorted(tables.items()):
        click.echo(f"{name}: {rows} rows")


@dr.command()
@click.argument("source")
@target_option
@click.option("--mode", type=click.Choice(["restic", "borg"]), default="restic", show_default=True)
@click.option("--keep-last", type=int)
@click.option("--keep-hourly", type=int)
@click.option("--keep-daily", type=int)
@click.option("--keep-weekly", type=int)
@click.option("--keep-monthly", type=int)
@click.option("--keep-within", default=None, help="e.g. 7d")
@click.option(
    "--rpo", type=FINITE, default=None, help="Seconds; named in the newest backup's keep reason."
)
@click.option("--dry-run/--apply", default=True, show_default=True)
@store_option
@json_option
def prune(
    source: str,
    target: str,
    mode: str,
    keep_last: int | None,
    keep_hourly: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    keep_within: str | None,
    rpo: float | None,
    dry_run: bool,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Apply retention to SOURCE's catalogued backups.

    Always kept: the newest backup, the newest verified one, and any a restore is reading.
    """
    from cognitionos.dr import RetentionPolicy

    policy = RetentionPolicy(
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_within=keep_within,
    )
    with _manager(source, target, store_url) as mgr:
        result = mgr.prune(policy, mode=mode, dry_run=dry_run, rpo=rpo)
    kept = [{"id": r.snapshot.id, "reasons": list(r.matches)} for r in result.reasons]
    if as_json:
        echo_json({"dry_run": dry_run, "keep": kept, "remove": [s.id for s in result.remove]})
        return
    for k in kept:
        click.echo(f"keep   {k['id']}  {', '.join(k['reasons'])}")
    for r in result.remove:
        click.echo(f"{'would remove' if dry_run else 'removed'} {r.id}")


@dr.command()
@click.argument("source")
@target_option
@click.option("--rpo", type=FINITE, default=900.0, show_default=True, help="Seconds.")
@store_option
@json_option
def status(source: str, target: str, rpo: float, store_url: str | None, as_json: bool) -> None:
    """Ages of the newest and the newest verified backup; exit 1 when either exceeds the RPO."""
    with _manager(source, target, store_url) as mgr:
        data = mgr.status(rpo=rpo)
    if as_json:
        echo_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")
    if data["backup_older_than_rpo"] or data["verified_older_than_rpo"]:
        raise SystemExit(1)


@dr.command()
@click.argument("source")
@target_option
@click.option("--rpo", type=FINITE, default=900.0, show_default=True, help="Seconds.")
@click.option("--rto", type=FINITE, default=3600.0, show_default=True, help="Seconds.")
@click.option(
    "--interval",
    type=FINITE,
    default=None,
    help="Backup schedule interval in seconds (default: the gap since the previous backup).",
)
@click.option("--detection", type=FINITE, default=60.0, show_default=True)
@click.option("--provisioning", type=FINITE, default=300.0, show_default=True)
@click.option("--dns", type=FINITE, default=60.0, show_default=True)
@scratch_option
@store_option
@json_option
def drill(
    source: str,
    target: str,
    rpo: float,
    rto: float,
    interval: float | None,
    detection: float,
    provisioning: float,
    dns: float,
    scratch: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Back up SOURCE, restore it to a scratch target, verify, and report measured RPO/RTO.

    Exit 1 when the restore does not verify or a measured value exceeds its target.
    """
    with _manager(source, target, store_url, scratch) as mgr:
        report = mgr.drill(
            rpo=rpo,
            rto=rto,
            interval=interval,
            detection_time=detection,
            provisioning_time=provisioning,
            dns_time=dns,
        )
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(f"backup {report.id}: {report.size} bytes in {report.backup_seconds:.3f} s")
        click.echo(
            f"restore to scratch + checks: {report.restore_seconds:.3f} s "
            f"({'verified' if report.verified else 'NOT verified'})"
        )
        for table, rows in sorted(report.rows.items()):
            click.echo(f"  {table}: {rows} rows")
        click.echo(f"measured RPO {report.measured_rpo:.3f} s (target {report.rpo_target:g} s)")
        click.echo(f"measured RTO {report.measured_rto:.3f} s (target {report.rto_target:g} s)")
        for p in report.problems:
            note(p)
    if not report.ok:
        raise SystemExit(1)
