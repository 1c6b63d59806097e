"""``/v1/dr``: recovery planning and retention previews (computed on the request's data), and
the catalog of the server database's own backups (platform tenant only).

Backups are taken by ``cognitionos dr backup`` into ``COGNITIONOS_BACKUP_DIR``; the server
reads that catalog (list, one backup, RPO status) and never changes it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cognitionos.server._compute import engine_errors, offload, plain
from cognitionos.server._http import Principal, require, state_of
from cognitionos.server._problems import ApiError

__all__ = ["MAX_SNAPSHOTS", "router"]

router = APIRouter(prefix="/v1/dr", tags=["dr"])

#: most snapshots one retention preview may carry
MAX_SNAPSHOTS = 10_000

Seconds = Annotated[float, Field(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, le=1e15, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=-1, le=100_000)]
Within = Annotated[str, Field(max_length=40, pattern=r"^(\d+[ymdh])+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanBody(Strict):
    size_bytes: Annotated[float, Field(ge=0, le=1e18, allow_inf_nan=False)]
    change_rate: Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)] = Field(
        description="bytes changed per second"
    )
    backup_throughput: Positive = Field(description="bytes per second")
    restore_throughput: Positive = Field(description="bytes per second")
    replay_throughput: Positive | None = None
    rpo: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] = 900.0
    rto: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] = 3600.0
    replication_lag: Seconds = 5.0
    detection_time: Seconds = 60.0
    provisioning_time: Seconds = 300.0
    promotion_time: Seconds = 60.0
    dns_time: Seconds = 60.0


class SnapshotIn(Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    time: AwareDatetime
    host: Annotated[str, Field(max_length=200)] = ""
    tags: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=20)] = Field(
        default_factory=list
    )


class Retention(Strict):
    keep_last: Count | None = None
    keep_hourly: Count | None = None
    keep_daily: Count | None = None
    keep_weekly: Count | None = None
    keep_monthly: Count | None = None
    keep_yearly: Count | None = None
    keep_within: Within | None = None


class RetentionPreview(Strict):
    snapshots: Annotated[list[SnapshotIn], Field(max_length=MAX_SNAPSHOTS)]
    policy: Retention
    mode: Literal["restic", "borg"] = "restic"
    now: AwareDatetime | None = Field(None, description="the time `keep_within` counts back from")


@router.post("/plan", summary="The backup schedule and DR tier that meet an RPO and RTO")
def plan(body: PlanBody, _p: Annotated[Principal, Depends(require("dr:plan"))]) -> dict[str, Any]:
    """Every tier's worst-case RPO/RTO, or the inequality that rules it out."""
    import attrs

    from cognitionos.dr import plan_recovery

    result = engine_errors(lambda: plan_recovery(**body.model_dump()))
    doc: dict[str, Any] = plain(result.as_dict())
    doc["feasible"] = result.feasible
    doc["chosen_tier"] = plain(attrs.asdict(result.chosen)) if result.chosen is not None else None
    return doc


@router.post("/retention/preview", summary="Which snapshots a retention policy keeps, and why")
async def retention_preview(
    request: Request,
    body: RetentionPreview,
    _p: Annotated[Principal, Depends(require("dr:plan"))],
) -> dict[str, Any]:
    """restic's or borg's rules; nothing is deleted (the snapshots are the request's)."""
    from cognitionos.dr import RetentionPolicy, Snapshot, apply_retention

    def run() -> dict[str, Any]:
        policy = RetentionPolicy(**body.policy.model_dump(exclude_none=True))
        snaps = [Snapshot(s.id, s.time, host=s.host, tags=tuple(s.tags)) for s in body.snapshots]
        result = apply_retention(snaps, policy, mode=body.mode, now=body.now)
        return {
            "keep": [
                {
                    "id": r.snapshot.id,
                    "time": r.snapshot.time.isoformat(),
                    "reasons": list(r.matches),
                }
                for r in result.reasons
            ],
            "remove": [{"id": s.id, "time": s.time.isoformat()} for s in result.remove],
        }

    result: dict[str, Any] = await offload(request, run)
    return result


def _manager(request: Request) -> Any:
    from cognitionos.dr import BackupManager

    settings = state_of(request).settings
    if not settings.backup_dir:
        raise ApiError(404, "this server has no backup catalog (COGNITIONOS_BACKUP_DIR is unset)")
    target = "file://" + settings.backup_dir
    return engine_errors(lambda: BackupManager(settings.database_url, target=target))


def _backup_doc(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "size": record.size,
        "sha256": record.sha256,
        "created_at": record.created_at,
        "verified_at": record.verified_at,
        "restore_seconds": plain(record.restore_seconds),
        "tables": sorted(record.tables),
    }


@router.get("/backups", summary="Backups of the server's database, newest first")
def backups(
    request: Request,
    _p: Annotated[Principal, Depends(require("dr:backups:read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    with _manager(request) as manager:
        records = engine_errors(manager.backups)
    return {"items": [_backup_doc(r) for r in records[:limit]], "next_cursor": None}


@router.get("/backups/{backup_id}", summary="One backup of the server's database")
def backup(
    request: Request,
    backup_id: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")],
    _p: Annotated[Principal, Depends(require("dr:backups:read"))],
) -> dict[str, Any]:
    from cognitionos.errors import ConfigurationError

    with _manager(request) as manager:
        try:
            record = manager.get(backup_id)
        except ConfigurationError:
            raise ApiError(404, f"no backup {backup_id!r}") from None
    return _backup_doc(record)


@router.get("/status", summary="Ages of the newest and newest verified backup against the RPO")
def status(
    request: Request,
    _p: Annotated[Principal, Depends(require("dr:backups:read"))],
    rpo: Annotated[float, Query(gt=0, le=10 * 365 * 86400)] = 900.0,
) -> dict[str, Any]:
    with _manager(request) as manager:
        doc: dict[str, Any] = plain(engine_errors(lambda: manager.status(rpo=rpo)))
    return {"rpo": rpo, **doc}
