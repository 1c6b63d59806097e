"""RPO/RTO planning: which backup schedule (or DR tier) meets the targets, and why not.

Model (all times in seconds, sizes in bytes, throughputs in bytes/second):

* **backup & restore**: a full backup every ``F`` and an incremental every ``I``. A backup
  is consistent as of its start and usable once finished; an incremental of ``I`` seconds of
  changes takes ``D = change_rate x I / backup_throughput``. The worst-case loss is a failure
  just before an incremental completes: ``RPO = I + D``. Recovery restores the full and
  replays every incremental since it: ``RTO = detection + provisioning + size/restore
  + change_rate x F / replay + dns``.
* **pilot light** (continuous log shipping, e.g. WAL archiving): logs are shipped every
  ``L``; ``RPO = L + replication_lag``; recovery restores the base backup and replays the
  logs since it, as above with ``F`` the base-backup interval.
* **warm standby**: a running replica; ``RPO = replication_lag``; ``RTO = detection +
  promotion + dns``.
* **active-active** (multi-region): ``RPO = replication_lag``; ``RTO = detection + dns``
  (traffic moves; nothing is promoted).

:func:`plan_recovery` takes the cheapest tier that meets both targets, derives its schedule
(the longest intervals that still meet them) and, for every tier that does not, states the
inequality that fails.
"""

from __future__ import annotations

import math

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["RecoveryPlan", "TierAssessment", "plan_recovery"]

TIERS = ("backup-restore", "pilot-light", "warm-standby", "active-active")


@attrs.frozen(slots=True)
class TierAssessment:
    """One DR tier: its worst-case RPO/RTO with the derived schedule, or why it cannot work."""

    tier: str
    feasible: bool
    rpo: float
    rto: float
    full_interval: float | None = None
    incremental_interval: float | None = None
    log_shipping_interval: float | None = None
    reasons: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class RecoveryPlan:
    """The chosen tier (None when none meets the targets) and the assessment of all four."""

    rpo_target: float
    rto_target: float
    chosen: TierAssessment | None
    tiers: tuple[TierAssessment, ...]

    @property
    def feasible(self) -> bool:
        """True when some tier meets both targets."""
        return self.chosen is not None

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON output."""
        return {
            "rpo_target": self.rpo_target,
            "rto_target": self.rto_target,
            "chosen": None if self.chosen is None else self.chosen.tier,
            "tiers": [attrs.asdict(t) for t in self.tiers],
        }


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        raise ConfigurationError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value!r}"
        )
    return float(value)


def plan_recovery(
    *,
    size_bytes: float,
    change_rate: float,
    backup_throughput: float,
    restore_throughput: float,
    replay_throughput: float | None = None,
    rpo: float = 900.0,
    rto: float = 3600.0,
    replication_lag: float = 5.0,
    detection_time: float = 60.0,
    provisioning_time: float = 300.0,
    promotion_time: float = 60.0,
    dns_time: float = 60.0,
    max_full_interval: float = 7 * 86400.0,
) -> RecoveryPlan:
    """Derive the schedule that meets ``rpo``/``rto`` (seconds) or explain which inequality fails.

    >>> plan = plan_recovery(size_bytes=50e9, change_rate=2e6, backup_throughput=200e6,
    ...                      restore_throughput=150e6, rpo=900, rto=3600)
    >>> plan.chosen.tier, plan.chosen.incremental_interval
    """
    size = _positive("size_bytes", size_bytes, allow_zero=True)
    c = _positive("change_rate", change_rate, allow_zero=True)
    b = _positive("backup_throughput", backup_throughput)
    r = _positive("restore_throughput", restore_throughput)
    p = _positive(
        "replay_throughput",
        replay_throughput if replay_throughput is not None else restore_throughput,
    )
    rpo = _positive("rpo", rpo)
    rto = _positive("rto", rto)
    lag = _positive("replication_lag", replication_lag, allow_zero=True)
    det = _positive("detection_time", detection_time, allow_zero=True)
    prov = _positive("provisioning_time", provisioning_time, allow_zero=True)
    promo = _positive("promotion_time", promotion_time, allow_zero=True)
    dns = _positive("dns_time", dns_time, allow_zero=True)
    max_full = _positive("max_full_interval", max_full_interval)

    tiers: list[TierAssessment] = []
    restore_full = size / r
    fixed = det + prov + restore_full + dns

    # -- backup & restore ------------------------------------------------------------------
    reasons: list[str] = []
    if c >= b:
        reasons.append(
            f"change_rate {c:g} B/s >= backup_throughput {b:g} B/s: incrementals never catch up"
        )
        inc = math.inf
        worst_rpo = math.inf
    else:
        inc = rpo / (1 + c / b)  # the largest I with I + c*I/b <= rpo
        worst_rpo = inc + c * inc / b
    slack = rto - fixed
    full_duration = size / b
    if slack <= 0:
        reasons.append(
            f"detection {det:g} + provisioning {prov:g} + full restore {restore_full:g} "
            f"(size/restore_throughput) + dns {dns:g} = {fixed:g} s > rto {rto:g} s"
        )
        full = math.nan
        worst_rto = fixed
    else:
        full = min(max_full, slack * p / c) if c > 0 else max_full
        worst_rto = fixed + c * full / p
        if full < full_duration:
            reasons.append(
                f"the full backup takes {full_duration:g} s (size/backup_throughput) but must "
                f"repeat every {full:g} s to keep the replay within rto"
            )
        if not reasons and full < inc:
            inc = full  # an incremental interval longer than the full one is meaningless
            worst_rpo = inc + c * inc / b
    tiers.append(
        TierAssessment(
            "backup-restore",
            not reasons,
            worst_rpo,
            worst_rto,
            full_interval=None if reasons else full,
            incremental_interval=None if reasons else inc,
            reasons=tuple(reasons),
        )
    )

    # -- pilot light -----------------------------------------------------------------------
    reasons = []
    ship = rpo - lag
    if ship <= 0:
        reasons.append(f"replication_lag {lag:g} s >= rpo {rpo:g} s")
    if c >= b:
        reasons.append(
            f"change_rate {c:g} B/s >= backup_throughput {b:g} B/s: log shipping falls behind"
        )
    if slack <= 0:
        reasons.append(
            f"detection + provisioning + base restore + dns = {fixed:g} s > rto {rto:g} s"
        )
        base = math.nan
        pl_rto = fixed
    else:
        base = min(max_full, slack * p / c) if c > 0 else max_full
        pl_rto = fixed + c * base / p
        if base < full_duration:
            reasons.append(
                f"the base backup takes {full_duration:g} s but must repeat every {base:g} s"
            )
    tiers.append(
        TierAssessment(
            "pilot-light",
            not reasons,
            max(ship, 0.0) + lag,
            pl_rto,
            full_interval=None if reasons else base,
            log_shipping_interval=None if reasons else ship,
            reasons=tuple(reasons),
        )
    )

    # -- warm standby and active-active ----------------------------------------------------
    for tier, recovery in (("warm-standby", det + promo + dns), ("active-active", det + dns)):
        reasons = []
        if lag > rpo:
            reasons.append(f"replication_lag {lag:g} s > rpo {rpo:g} s")
        if recovery > rto:
            parts = "detection + promotion + dns" if tier == "warm-standby" else "detection + dns"
            reasons.append(f"{parts} = {recovery:g} s > rto {rto:g} s")
        tiers.append(TierAssessment(tier, not reasons, lag, recovery, reasons=tuple(reasons)))

    chosen = next((t for t in tiers if t.feasible), None)
    return RecoveryPlan(rpo_target=rpo, rto_target=rto, chosen=chosen, tiers=tuple(tiers))
