"""Snapshot retention with restic ``forget`` and borg ``prune`` semantics, each with reasons.

``mode="restic"`` (restic's ``ApplyPolicy``): snapshots newest first (stable sort); each
count rule (last, hourly, daily, weekly, monthly, yearly) keeps the newest snapshot of every
new period until its count is spent (-1: unlimited), and **one snapshot can satisfy several
rules at once**, decrementing each; a rule with count left keeps the oldest snapshot too
("oldest ... snapshot"). ``within*`` durations are measured back from the **newest snapshot**
with calendar arithmetic; ``tags`` keeps snapshots carrying every tag of one tag list.

``mode="borg"`` (borg ``prune``): rules run one after another (secondly/last, minutely,
hourly, daily, weekly, monthly, yearly); a snapshot kept by an earlier rule uses up its
period for later rules but **does not count** toward their numbers; the last rule whose
count was not reached keeps the oldest archive ("[oldest]"); ``within`` is measured back
from ``now``. Periods are computed in ``timezone`` (borg uses local time).

Both group snapshots by ``group_by`` keys (host, paths, tags) and never decide for a group
other than the snapshot's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["KeepReason", "RetentionPolicy", "RetentionResult", "Snapshot", "apply_retention"]

_DURATION = re.compile(r"^(?:\d+[ymdh])+$")


def _duration(text: str | None, field: str) -> tuple[int, int, int, int] | None:
    """restic's ``1y2m3d4h`` (years, months, days, hours); letters may come in any order."""
    if text is None:
        return None
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ConfigurationError(f"{field} must look like '1y2m3d4h', got {text!r}")
    parts = {"y": 0, "m": 0, "d": 0, "h": 0}
    for number, unit in re.findall(r"(\d+)([ymdh])", text):
        parts[unit] += int(number)
    return parts["y"], parts["m"], parts["d"], parts["h"]


def _duration_str(d: tuple[int, int, int, int]) -> str:
    return "".join(f"{n}{u}" for n, u in zip(d, "ymdh", strict=True) if n)


def _add_date(t: datetime, years: int, months: int, days: int) -> datetime:
    """Go's ``time.AddDate``: out-of-range days roll over into the next month."""
    month0 = t.month - 1 + months
    year = t.year + years + month0 // 12
    month = month0 % 12 + 1
    if year < 1:  # before the calendar Python can represent: nothing is older than this
        return datetime.min.replace(tzinfo=t.tzinfo)
    if year > 9999:
        return datetime.max.replace(tzinfo=t.tzinfo)
    try:
        return t.replace(year=year, month=month, day=1) + timedelta(days=t.day - 1 + days)
    except OverflowError:
        return (datetime.min if days < 0 else datetime.max).replace(tzinfo=t.tzinfo)


@attrs.frozen(slots=True)
class Snapshot:
    """One backup: an id, its time (timezone-aware), and the keys it is grouped by."""

    id: str
    time: datetime
    host: str = ""
    paths: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ConfigurationError(f"snapshot {self.id!r}: time must be timezone-aware")


def _count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < -1):
        raise ConfigurationError(f"{name} must be an integer >= -1 (-1 = unlimited), got {value!r}")


@attrs.frozen(slots=True)
class RetentionPolicy:
    """What to keep. Counts are per period (-1 unlimited); ``within*`` are ``1y2m3d4h`` strings.

    ``keep_secondly``/``keep_minutely`` exist in borg only; ``tags`` (lists of tags, a
    snapshot matching every tag of one list is kept) and ``within_*`` in restic only.
    """

    keep_last: int | None = None
    keep_secondly: int | None = None
    keep_minutely: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: str | None = None
    keep_within_hourly: str | None = None
    keep_within_daily: str | None = None
    keep_within_weekly: str | None = None
    keep_within_monthly: str | None = None
    keep_within_yearly: str | None = None
    keep_tags: tuple[tuple[str, ...], ...] = ()
    group_by: tuple[str, ...] = ("host", "paths")

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(RetentionPolicy):
            if f.name.startswith("keep_") and not f.name.startswith(("keep_within", "keep_tags")):
                _count(f.name, getattr(self, f.name))
            if f.name.startswith("keep_within"):
                _duration(getattr(self, f.name), f.name)
        if not isinstance(self.group_by, (tuple, list)) or not all(
            isinstance(k, str) for k in self.group_by
        ):
            raise ConfigurationError(
                f"group_by must be a tuple of key names, got {self.group_by!r}"
            )
        if not isinstance(self.keep_tags, (tuple, list)) or not all(
            isinstance(tags, (tuple, list)) and all(isinstance(t, str) for t in tags)
            for tags in self.keep_tags
        ):
            raise ConfigurationError(
                f"keep_tags must be lists of tag names, got {self.keep_tags!r}"
            )
        bad = set(self.group_by) - {"host", "paths", "tags"}
        if bad:
            raise ConfigurationError(
                f"group_by keys must be host, paths or tags, got {sorted(bad)}"
            )

    @property
    def empty(self) -> bool:
        """True when the policy keeps nothing at all."""
        counts = [
            self.keep_last,
            self.keep_secondly,
            self.keep_minutely,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        withins = [
            self.keep_within,
            self.keep_within_hourly,
            self.keep_within_daily,
            self.keep_within_weekly,
            self.keep_within_monthly,
            self.keep_within_yearly,
        ]
        return (
            all(c in (None, 0) for c in counts)
            and all(w is None or _duration(w, "within") == (0, 0, 0, 0) for w in withins)
            and not self.keep_tags
        )


@attrs.frozen(slots=True)
class KeepReason:
    """Why a snapshot was kept: the rules it matched and the counts left after it."""

    snapshot: Snapshot
    matches: tuple[str, ...]
    counters: tuple[tuple[str, int], ...] = ()


@attrs.frozen(slots=True)
class RetentionResult:
    """Snapshots to keep (newest first) with reasons, and snapshots to remove."""

    keep: tuple[Snapshot, ...]
    remove: tuple[Snapshot, ...]
    reasons: tuple[KeepReason, ...]


def _period(kind: str, t: datetime) -> object:
    if kind == "hourly":
        return (t.year, t.month, t.day, t.hour)
    if kind == "daily":
        return (t.year, t.month, t.day)
    if kind == "weekly":
        iso = t.isocalendar()
        return (iso[0], iso[1])
    if kind == "monthly":
        return (t.year, t.month)
    if kind == "yearly":
        return t.year
    if kind == "minutely":
        return (t.year, t.month, t.day, t.hour, t.minute)
    if kind == "secondly":
        return (t.year, t.month, t.day, t.hour, t.minute, t.second)
    raise AssertionError(kind)


def _restic(snaps: Sequence[Snapshot], p: RetentionPolicy, tz: tzinfo) -> list[KeepReason]:
    buckets: list[list[object]] = [
        [name, count, None]
        for name, count in (
            ("last", p.keep_last),
            ("hourly", p.keep_hourly),
            ("daily", p.keep_daily),
            ("weekly", p.keep_weekly),
            ("monthly", p.keep_monthly),
            ("yearly", p.keep_yearly),
        )
    ]
    withins = [
        (name, _duration(text, name))
        for name, text in (
            ("hourly", p.keep_within_hourly),
            ("daily", p.keep_within_daily),
            ("weekly", p.keep_within_weekly),
            ("monthly", p.keep_within_monthly),
            ("yearly", p.keep_within_yearly),
        )
    ]
    within_last: dict[str, object] = {}
    out: list[KeepReason] = []
    if not snaps:
        return out
    latest = snaps[0].time.astimezone(tz)

    def cutoff(d: tuple[int, int, int, int]) -> datetime:
        return _add_date(latest, -d[0], -d[1], -d[2]) - timedelta(hours=d[3])

    within = _duration(p.keep_within, "keep_within")
    last_index = len(snaps) - 1
    for nr, snap in enumerate(snaps):
        t = snap.time.astimezone(tz)
        matches: list[str] = []
        for tags in p.keep_tags:
            if set(tags) <= set(snap.tags):
                matches.append("has tags [" + ", ".join(tags) + "]")
        if within is not None and within != (0, 0, 0, 0) and t > cutoff(within):
            matches.append(f"within {_duration_str(within)}")
        for b in buckets:
            name, count, last = b
            if count is None or count == 0:
                continue
            val: object = nr if name == "last" else _period(str(name), t)
            if val != last or nr == last_index:
                b[2] = val
                if isinstance(count, int) and count > 0:
                    b[1] = count - 1
                matches.append(f"{name} snapshot" if val != last else f"oldest {name} snapshot")
        for name, d in withins:
            if d is None or d == (0, 0, 0, 0) or not t > cutoff(d):
                continue
            val = _period(name, t)
            last = within_last.get(name)
            if val != last or nr == last_index:
                within_last[name] = val
                label = f"{name} within {_duration_str(d)}"
                matches.append(label if val != last else f"oldest {label}")
        if matches:
            counters = tuple((str(b[0]), int(b[1])) for b in buckets if b[1] not in (None, 0))  # type: ignore[call-overload]
            out.append(KeepReason(snap, tuple(matches), counters))
    return out


_BORG_RULES = ("secondly", "minutely", "hourly", "daily", "weekly", "monthly", "yearly")


def _borg(
    snaps: Sequence[Snapshot], p: RetentionPolicy, tz: tzinfo, now: datetime, keep_oldest: bool
) -> list[KeepReason]:
    if p.keep_last is not None and p.keep_secondly is not None:
        raise ConfigurationError("borg: keep_last is keep_secondly; give only one of them")
    counts = {
        "secondly": p.keep_secondly if p.keep_secondly is not None else p.keep_last,
        "minutely": p.keep_minutely,
        "hourly": p.keep_hourly,
        "daily": p.keep_daily,
        "weekly": p.keep_weekly,
        "monthly": p.keep_monthly,
        "yearly": p.keep_yearly,
    }
    kept: dict[str, str] = {}
    within = _duration(p.keep_within, "keep_within")
    if within is not None and within != (0, 0, 0, 0):
        local_now = now.astimezone(tz)
        cut = _add_date(local_now, -within[0], -within[1], -within[2]) - timedelta(hours=within[3])
        for s in snaps:
            if s.time.astimezone(tz) > cut:
                kept[s.id] = f"within {_duration_str(within)}"
    active = [r for r in _BORG_RULES if counts[r] not in (None, 0)]
    for rule in active:
        n = counts[rule]
        assert n is not None
        last: object = None
        taken = 0
        for s in snaps:
            period = _period(rule, s.time.astimezone(tz))
            if period != last:
                last = period
                if s.id not in kept:
                    taken += 1
                    kept[s.id] = f"{rule} #{taken}"
                    if taken == n:
                        break
        oldest = snaps[-1] if snaps else None
        if (
            keep_oldest
            and rule == active[-1]
            and oldest is not None
            and n != -1
            and taken < n
            and oldest.id not in kept
        ):
            kept[oldest.id] = f"{rule}[oldest] #{taken + 1}"
    return [KeepReason(s, (kept[s.id],)) for s in snaps if s.id in kept]


def _group_key(s: Snapshot, keys: Iterable[str]) -> tuple[object, ...]:
    return tuple(
        s.host if k == "host" else tuple(sorted(s.paths)) if k == "paths" else tuple(sorted(s.tags))
        for k in keys
    )


def apply_retention(
    snapshots: Iterable[Snapshot],
    policy: RetentionPolicy,
    *,
    mode: Literal["restic", "borg"] = "restic",
    timezone: tzinfo = UTC,
    now: datetime | None = None,
    keep_oldest: bool = True,
    allow_empty: bool = False,
) -> RetentionResult:
    """Decide which snapshots ``policy`` keeps, with a reason for each kept one.

    An empty policy is refused (it would delete everything) unless ``allow_empty=True``,
    which returns no keeps, as restic's library function does::

        result = apply_retention(snaps, RetentionPolicy(keep_last=3, keep_daily=7), mode="restic")
    """
    if mode not in ("restic", "borg"):
        raise ConfigurationError(f"mode must be 'restic' or 'borg', got {mode!r}")
    items = list(snapshots)
    ids = [s.id for s in items]
    if len(set(ids)) != len(ids):
        raise ConfigurationError("snapshot ids must be unique")
    if policy.empty and not allow_empty:
        raise ConfigurationError(
            "retention policy keeps nothing: refusing to remove every snapshot"
        )
    groups: dict[tuple[object, ...], list[Snapshot]] = {}
    for s in items:
        groups.setdefault(_group_key(s, policy.group_by), []).append(s)
    reasons: list[KeepReason] = []
    for members in groups.values():
        ordered = sorted(
            members, key=lambda s: s.time, reverse=True
        )  # stable: ties keep input order
        if policy.empty:
            continue
        if mode == "restic":
            reasons.extend(_restic(ordered, policy, timezone))
        else:
            reasons.extend(_borg(ordered, policy, timezone, now or datetime.now(UTC), keep_oldest))
    kept_ids = {r.snapshot.id for r in reasons}
    reasons.sort(key=lambda r: r.snapshot.time, reverse=True)
    keep = tuple(r.snapshot for r in reasons)
    remove = tuple(
        sorted((s for s in items if s.id not in kept_ids), key=lambda s: s.time, reverse=True)
    )
    return RetentionResult(keep=keep, remove=remove, reasons=tuple(reasons))
