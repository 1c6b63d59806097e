"""Where exposures and per-arm sufficient statistics live: memory, SQL (upserts), Redis (Lua).

Each backend offers the same three operations, each atomic per call:

- ``expose(exp, [(unit, arm), ...])``: the first exposure of a unit fixes its arm and adds
  one to the arm's ``n``; a later exposure to another arm marks the unit as having seen
  several variants (counted once per unit, the unit stays in its first arm);
- ``track(exp, specs, [(unit, event_id, metric, value, den, cov), ...])``: exactly-once per
  ``(unit, event id)``; events of units not exposed yet are recorded as seen but not
  counted (a metric counts from the unit's exposure on); the rest update the unit's
  running totals and add the change of its contribution to the arm's sums (see
  :mod:`cognitionos.experiments._core`);
- ``read(exp)``: units per arm, the sums per ``(arm, metric)`` and the multi-exposure count;
- ``prune(exp, before)``: forget the event ids first seen before ``before`` (seconds), so the
  de-duplication record stays bounded (exactly-once holds within the retention window).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cognitionos._optional import require
from cognitionos.errors import StorageError
from cognitionos.experiments._core import (
    N_SUMS,
    SUM_FIELDS,
    MetricSpec,
    TrackedEvent,
    apply_events,
)

__all__ = [
    "COUNTED",
    "DUPLICATE",
    "UNEXPOSED",
    "MemoryStats",
    "RedisStats",
    "SQLStats",
    "StatsBackend",
    "build_tables",
    "stats_backend",
]

COUNTED, DUPLICATE, UNEXPOSED = 0, 1, 2
#: (unit, event id, metric, value, denominator, covariate or None)
RawEvent = tuple[str, str, str, float, float, "float | None"]
Read = tuple[dict[str, int], dict[tuple[str, str], list[float]], int]
#: units first exposed in each phase, per arm: {phase: {arm: units}}
PhaseCounts = dict[int, dict[str, int]]
#: per-phase unit counts live beside the per-arm counts (SQL rows, Redis hash fields) under
#: this marker, which no arm key can contain: "\x1fp<phase>\x1f<arm>"
PHASE_MARK = "\x1fp"


def phase_field(phase: int, arm: str) -> str:
    """The per-arm count key holding ``arm``'s first exposures in ``phase``."""
    return f"{PHASE_MARK}{int(phase)}\x1f{arm}"


def parse_phase_field(field: str) -> tuple[int, str]:
    """(phase, arm) of a key made by :func:`phase_field`."""
    phase, arm = field[len(PHASE_MARK) :].split("\x1f", 1)
    return int(phase), arm


class StatsBackend(Protocol):
    """What the three backends implement."""

    def expose(self, exp: str, records: Sequence[tuple[str, str]], phase: int = 0) -> list[bool]:
        """True per record that was the unit's first exposure (counted in ``phase`` too)."""
        ...

    def phases(self, exp: str) -> PhaseCounts:
        """Units first exposed in each phase, per arm."""
        ...

    def track(
        self,
        exp: str,
        specs: Mapping[str, MetricSpec],
        events: Sequence[RawEvent],
        now: int = 0,
    ) -> list[int]:
        """COUNTED, DUPLICATE or UNEXPOSED per event; ids are recorded as seen at ``now``."""
        ...

    def prune(self, exp: str, before: int) -> int:
        """Forget event ids first seen before ``before`` (seconds); how many were removed."""
        ...

    def read(self, exp: str) -> Read:
        """(units per arm, sums per (arm, metric), units exposed to several arms)."""
        ...

    def clear(self, exp: str) -> None:
        """Forget every exposure and statistic of ``exp``."""
        ...


def _split(
    events: Sequence[RawEvent], seen_before: set[tuple[str, str]]
) -> tuple[list[int], list[tuple[int, RawEvent]]]:
    """Statuses with duplicates marked (against the store and inside the batch)."""
    status = [COUNTED] * len(events)
    fresh: list[tuple[int, RawEvent]] = []
    batch_seen: set[tuple[str, str]] = set()
    for i, ev in enumerate(events):
        ident = (ev[0], ev[1])
        if ident in seen_before or ident in batch_seen:
            status[i] = DUPLICATE
            continue
        batch_seen.add(ident)
        fresh.append((i, ev))
    return status, fresh


class _MemoryExperiment:
    __slots__ = ("arm_n", "arms", "multi", "phase_n", "seen", "state", "sums")

    def __init__(self) -> None:
        self.arms: dict[str, str] = {}
        self.arm_n: dict[str, int] = {}
        self.multi: set[str] = set()
        self.phase_n: dict[tuple[int, str], int] = {}
        self.seen: dict[tuple[str, str], int] = {}
        self.state: dict[tuple[str, str], list[float]] = {}
        self.sums: dict[tuple[str, str], list[float]] = {}


class MemoryStats:
    """In-process statistics, shared by every engine on the same ``memory://`` store object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exps: dict[str, _MemoryExperiment] = {}

    def _exp(self, exp: str) -> _MemoryExperiment:
        e = self._exps.get(exp)
        if e is None:
            e = self._exps[exp] = _MemoryExperiment()
        return e

    def expose(self, exp: str, records: Sequence[tuple[str, str]], phase: int = 0) -> list[bool]:
        """True per record that was the unit's first exposure."""
        out: list[bool] = []
        with self._lock:
            e = self._exp(exp)
            arms, arm_n, phase_n = e.arms, e.arm_n, e.phase_n
            for unit, arm in records:
                have = arms.get(unit)
                if have is None:
                    arms[unit] = arm
                    arm_n[arm] = arm_n.get(arm, 0) + 1
                    phase_n[(phase, arm)] = phase_n.get((phase, arm), 0) + 1
                    out.append(True)
                else:
                    if have != arm:
                        e.multi.add(unit)
                    out.append(False)
        return out

    def track(
        self,
        exp: str,
        specs: Mapping[str, MetricSpec],
        events: Sequence[RawEvent],
        now: int = 0,
    ) -> list[int]:
        """COUNTED, DUPLICATE or UNEXPOSED per event."""
        with self._lock:
            e = self._exp(exp)
            seen, arms = e.seen, e.arms
            status = [COUNTED] * len(events)
            counted: list[TrackedEvent] = []
            for i, (unit, eid, metric, value, den, cov) in enumerate(events):
                ident = (unit, eid)
                if ident in seen:
                    status[i] = DUPLICATE
                    continue
                seen[ident] = now
                if unit not in arms:
                    status[i] = UNEXPOSED
                    continue
                counted.append((unit, metric, value, den, cov))
            deltas = apply_events(counted, specs, arms, e.state)
            sums = e.sums
            for key, delta in deltas.items():
                acc = sums.get(key)
                if acc is None:
                    sums[key] = delta
                else:
                    for j in range(N_SUMS):
                        acc[j] += delta[j]
        return status

    def read(self, exp: str) -> Read:
        """(units per arm, sums per (arm, metric), units exposed to several arms)."""
        with self._lock:
            e = self._exp(exp)
            return dict(e.arm_n), {k: list(v) for k, v in e.sums.items()}, len(e.multi)

    def phases(self, exp: str) -> PhaseCounts:
        """Units first exposed in each phase, per arm."""
        out: PhaseCounts = {}
        with self._lock:
            for (phase, arm), units in self._exp(exp).phase_n.items():
                out.setdefault(phase, {})[arm] = units
        return out

    def prune(self, exp: str, before: int) -> int:
        """Forget event ids first seen before ``before`` (seconds)."""
        with self._lock:
            e = self._exps.get(exp)
            if e is None:
                return 0
            old = [k for k, t in e.seen.items() if t < before]
            for k in old:
                del e.seen[k]
            return len(old)

    def clear(self, exp: str) -> None:
        """Forget every exposure and statistic of ``exp``."""
        with self._lock:
            self._exps.pop(exp, None)


# -- SQL ---------------------------------------------------------------------------------------


def build_tables(metadata: Any) -> dict[str, Any]:
    """The experiment tables (migrations 0004 and 0005 create exactly these), added to
    ``metadata``."""
    sa = require("sqlalchemy", extra="sql")
    name = sa.String(300)
    units = sa.Table(
        "cos_exp_units",
        metadata,
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("arm", name, nullable=False),
        sa.Column("multi", sa.Boolean, nullable=False),
    )
    arms = sa.Table(
        "cos_exp_arms",
        metadata,
        sa.Column("experiment", name, primary_key=True),
        sa.Column("arm", name, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("multi", sa.BigInteger, nullable=False),
    )
    seen = sa.Table(
        "cos_exp_seen",
        metadata,
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("event_id", name, primary_key=True),
        # second the id was first seen: ids older than the retention window are pruned
        sa.Column("seen_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Index("ix_cos_exp_seen_age", "experiment", "seen_at"),
    )
    unit_metrics = sa.Table(
        "cos_exp_unit_metrics",
        metadata,
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("metric", name, primary_key=True),
        sa.Column("num", sa.Float(53), nullable=False),
        sa.Column("den", sa.Float(53), nullable=False),
        sa.Column("cov", sa.Float(53), nullable=False),
    )
    stats = sa.Table(
        "cos_exp_stats",
        metadata,
        sa.Column("experiment", name, primary_key=True),
        sa.Column("arm", name, primary_key=True),
        sa.Column("metric", name, primary_key=True),
        *(sa.Column(f, sa.Float(53), nullable=False) for f in SUM_FIELDS),
    )
    return {
        "units": units,
        "arms": arms,
        "seen": seen,
        "unit_metrics": unit_metrics,
        "stats": stats,
    }


_CHUNK = 300


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# PostgreSQL statements: each batch travels as one JSON array of rows (encoded in C by
# ``json``, exact for floats: repr round-trips and PostgreSQL parses it back to the same
# double), unpacked server-side with json_array_elements.
_PG_SEEN = (
    "INSERT INTO cos_exp_seen (experiment, unit, event_id, seen_at) "
    "SELECT %(x)s, k->>0, k->>1, %(t)s FROM json_array_elements(%(r)s::json) AS k "
    "ON CONFLICT DO NOTHING RETURNING unit, event_id"
)
_PG_ARMS = (
    "SELECT unit, arm FROM cos_exp_units WHERE experiment = %(x)s AND unit IN "
    "(SELECT json_array_elements_text(%(r)s::json))"
)
_PG_UM_CREATE = (
    "INSERT INTO cos_exp_unit_metrics (experiment, unit, metric, num, den, cov) "
    "SELECT %(x)s, k->>0, k->>1, 0, 0, 0 FROM json_array_elements(%(r)s::json) AS k "
    "ON CONFLICT DO NOTHING"
)
_PG_UM_LOCK = (
    "SELECT t.unit, t.metric, t.num, t.den, t.cov FROM cos_exp_unit_metrics t "
    "JOIN (SELECT k->>0 AS u, k->>1 AS m FROM json_array_elements(%(r)s::json) AS k) AS k "
    "ON t.unit = k.u AND t.metric = k.m WHERE t.experiment = %(x)s "
    "ORDER BY t.unit, t.metric FOR UPDATE OF t"
)
_PG_UM_WRITE = (
    "UPDATE cos_exp_unit_metrics AS t SET num = (k->>2)::float8, den = (k->>3)::float8, "
    "cov = (k->>4)::float8 FROM json_array_elements(%(r)s::json) AS k "
    "WHERE t.experiment = %(x)s AND t.unit = k->>0 AND t.metric = k->>1"
)
_PG_STATS = (
    "INSERT INTO cos_exp_stats (experiment, arm, metric, "
    + ", ".join(f'"{f}"' for f in SUM_FIELDS)
    + ") SELECT %(x)s, k->>0, k->>1, "
    + ", ".join(f"(k->>{j + 2})::float8" for j in range(len(SUM_FIELDS)))
    + " FROM json_array_elements(%(r)s::json) AS k"
    + " ON CONFLICT (experiment, arm, metric) DO UPDATE SET "
    + ", ".join(f'"{f}" = cos_exp_stats."{f}" + excluded."{f}"' for f in SUM_FIELDS)
)
_json_rows = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class SQLStats:
    """Statistics in SQL tables, one transaction per call, through the store's engine.

    PostgreSQL: each step of a batch is one statement over a JSON array (``_track_pg``); unit
    rows are created first (``ON CONFLICT DO NOTHING``) and then locked ``FOR UPDATE`` in
    key order, so concurrent writers of one unit serialise and never lose a delta. SQLite
    serialises writers already (``BEGIN IMMEDIATE``) and uses batched executemany.
    """

    def __init__(self, store: Any) -> None:
        sa = require("sqlalchemy", extra="sql")
        from sqlalchemy.dialects import postgresql, sqlite

        self.store = store
        self.dialect = store.dialect
        self._insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        md = sa.MetaData()
        self.t = build_tables(md)
        # the migration creates them; a store opened with auto_migrate=False may predate it
        md.create_all(store.engine, checkfirst=True)
        # statements built once and run with executemany: SQLAlchemy batches the rows
        # ("insertmanyvalues") and compiles each statement once, whatever the batch size
        units, arms, seen, um, stats = (
            self.t[n] for n in ("units", "arms", "seen", "unit_metrics", "stats")
        )
        self._q_units = self._insert(units).on_conflict_do_nothing().returning(units.c.unit)
        ins = self._insert(arms)
        self._q_arms = ins.on_conflict_do_update(
            index_elements=[arms.c.experiment, arms.c.arm],
            set_={"n": arms.c.n + ins.excluded.n, "multi": arms.c.multi + ins.excluded.multi},
        )
        self._q_seen = (
            self._insert(seen).on_conflict_do_nothing().returning(seen.c.unit, seen.c.event_id)
        )
        # RETURNING makes SQLAlchemy send these as multi-row statements (insertmanyvalues)
        # instead of one statement per row
        self._q_um_create = self._insert(um).on_conflict_do_nothing().returning(um.c.unit)
        ins = self._insert(um)
        self._q_um_write = ins.on_conflict_do_update(
            index_elements=[um.c.experiment, um.c.unit, um.c.metric],
            set_={"num": ins.excluded.num, "den": ins.excluded.den, "cov": ins.excluded.cov},
        ).returning(um.c.unit)
        ins = self._insert(stats)
        self._q_stats = ins.on_conflict_do_update(
            index_elements=[stats.c.experiment, stats.c.arm, stats.c.metric],
            set_={f: stats.c[f] + ins.excluded[f] for f in SUM_FIELDS},
        )

    def _among(self, column: Any, values: Sequence[str]) -> Any:
        """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter, a stable plan."""
        sa = require("sqlalchemy")
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.literal(list(values), ARRAY(sa.String)))
        return column.in_(values)

    def _tx(self, what: str) -> Any:
        return self.store._tx(what)  # one transaction, errors wrapped as StorageError

    def expose(self, exp: str, records: Sequence[tuple[str, str]], phase: int = 0) -> list[bool]:
        """True per record that was the unit's first exposure."""
        sa = require("sqlalchemy")
        units = self.t["units"]
        first: dict[str, str] = {}
        for unit, arm in records:
            first.setdefault(unit, arm)
        out: list[bool] = []
        with self._tx("experiment exposure") as conn:
            inserted: set[str] = set()
            params = [
                {"experiment": exp, "unit": u, "arm": a, "multi": False} for u, a in first.items()
            ]
            inserted.update(r[0] for r in conn.execute(self._q_units, params))
            known: dict[str, str] = {}
            for chunk in _chunks(list(first)):
                q = sa.select(units.c.unit, units.c.arm).where(
                    units.c.experiment == exp, self._among(units.c.unit, chunk)
                )
                known.update((r[0], r[1]) for r in conn.execute(q))
            new_n: dict[str, int] = {}
            multi: set[str] = set()
            used: set[str] = set()
            for unit, arm in records:
                is_first = unit in inserted and unit not in used
                used.add(unit)
                out.append(is_first)
                if is_first:
                    new_n[arm] = new_n.get(arm, 0) + 1
                elif known.get(unit) != arm:
                    multi.add(unit)
            multi_by_arm: dict[str, int] = {}
            for chunk in _chunks(sorted(multi)):
                q = (
                    sa.update(units)
                    .where(
                        units.c.experiment == exp,
                        self._among(units.c.unit, chunk),
                        units.c.multi == sa.false(),
                    )
                    .values(multi=True)
                    .returning(units.c.arm)
                )
                for (arm,) in conn.execute(q):
                    multi_by_arm[arm] = multi_by_arm.get(arm, 0) + 1
            rows = [
                {"experiment": exp, "arm": a, "n": new_n.get(a, 0), "multi": multi_by_arm.get(a, 0)}
                for a in sorted(set(new_n) | set(multi_by_arm))
            ]
            # the phase's first exposures: extra rows of the same table (see PHASE_MARK)
            rows += [
                {"experiment": exp, "arm": phase_field(phase, a), "n": k, "multi": 0}
                for a, k in sorted(new_n.items())
            ]
            if rows:
                conn.execute(self._q_arms, rows)
        return out

    def track(
        self,
        exp: str,
        specs: Mapping[str, MetricSpec],
        events: Sequence[RawEvent],
        now: int = 0,
    ) -> list[int]:
        """COUNTED, DUPLICATE or UNEXPOSED per event (one transaction for the batch)."""
        if self.dialect == "postgresql":
            return self._track_pg(exp, specs, events, now)
        sa = require("sqlalchemy")
        units, um = self.t["units"], self.t["unit_metrics"]
        idents = sorted({(ev[0], ev[1]) for ev in events})
        with self._tx("experiment tracking") as conn:
            new_ids: set[tuple[str, str]] = set()
            if idents:
                params = [
                    {"experiment": exp, "unit": u, "event_id": e, "seen_at": now} for u, e in idents
                ]
                new_ids.update((r[0], r[1]) for r in conn.execute(self._q_seen, params))
            status, fresh = _split(events, set(idents) - new_ids)
            unit_ids = sorted({ev[0] for _, ev in fresh})
            arm_of: dict[str, str] = {}
            for chunk in _chunks(unit_ids):
                q = sa.select(units.c.unit, units.c.arm).where(
                    units.c.experiment == exp, self._among(units.c.unit, chunk)
                )
                arm_of.update((r[0], r[1]) for r in conn.execute(q))
            counted: list[TrackedEvent] = []
            for i, (unit, _eid, metric, value, den, cov) in fresh:
                if unit in arm_of:
                    counted.append((unit, metric, value, den, cov))
                else:
                    status[i] = UNEXPOSED
            if not counted:
                return status
            pairs = sorted({(ev[0], ev[1]) for ev in counted})
            conn.execute(
                self._q_um_create,
                [
                    {"experiment": exp, "unit": u, "metric": m, "num": 0.0, "den": 0.0, "cov": 0.0}
                    for u, m in pairs
                ],
            ).all()
            state: dict[tuple[str, str], list[float]] = {}
            for chunk in _chunks(pairs):
                q = (
                    sa.select(um.c.unit, um.c.metric, um.c.num, um.c.den, um.c.cov)
                    .where(
                        um.c.experiment == exp,
                        self._among(um.c.unit, sorted({u for u, _ in chunk})),
                    )
                    .order_by(um.c.unit, um.c.metric)
                )
                wanted = set(chunk)
                for r in conn.execute(q):
                    if (r[0], r[1]) in wanted:
                        state[(r[0], r[1])] = [float(r[2]), float(r[3]), float(r[4])]
            deltas = apply_events(counted, specs, arm_of, state)
            rows = [
                {"experiment": exp, "unit": u, "metric": m, "num": s[0], "den": s[1], "cov": s[2]}
                for (u, m), s in sorted(state.items())
            ]
            conn.execute(self._q_um_write, rows).all()
            stat_rows = [
                {
                    "experiment": exp,
                    "arm": arm,
                    "metric": metric,
                    **dict(zip(SUM_FIELDS, d, strict=True)),
                }
                for (arm, metric), d in sorted(deltas.items())
            ]
            conn.execute(self._q_stats, stat_rows)
        return status

    def _track_pg(
        self, exp: str, specs: Mapping[str, MetricSpec], events: Sequence[RawEvent], now: int
    ) -> list[int]:
        """PostgreSQL: every step is one statement over the batch as a JSON array, whatever
        the batch size: 6 round trips and no per-row statement work on the client.

        Rows are created with ``ON CONFLICT DO NOTHING`` and then locked ``FOR UPDATE`` in
        key order, so concurrent writers of one unit serialise and never lose a delta.
        """
        idents = sorted({(ev[0], ev[1]) for ev in events})
        with self._tx("experiment tracking") as conn:
            run = conn.exec_driver_sql
            new_ids: set[tuple[str, str]] = set()
            if idents:
                p = {"x": exp, "r": _json_rows(idents), "t": now}
                new_ids.update((r[0], r[1]) for r in run(_PG_SEEN, p))
            status, fresh = _split(events, set(idents) - new_ids)
            unit_ids = sorted({ev[0] for _, ev in fresh})
            arm_of: dict[str, str] = {}
            if unit_ids:
                p = {"x": exp, "r": _json_rows(unit_ids)}
                arm_of.update((r[0], r[1]) for r in run(_PG_ARMS, p))
            counted: list[TrackedEvent] = []
            for i, (unit, _eid, metric, value, den, cov) in fresh:
                if unit in arm_of:
                    counted.append((unit, metric, value, den, cov))
                else:
                    status[i] = UNEXPOSED
            if not counted:
                return status
            pairs = _json_rows(sorted({(ev[0], ev[1]) for ev in counted}))
            run(_PG_UM_CREATE, {"x": exp, "r": pairs})
            state: dict[tuple[str, str], list[float]] = {
                (r[0], r[1]): [float(r[2]), float(r[3]), float(r[4])]
                for r in run(_PG_UM_LOCK, {"x": exp, "r": pairs})
            }
            deltas = apply_events(counted, specs, arm_of, state)
            rows = [(u, m, *s) for (u, m), s in sorted(state.items())]
            run(_PG_UM_WRITE, {"x": exp, "r": _json_rows(rows)})
            stat_rows = [(a, m, *map(float, d)) for (a, m), d in sorted(deltas.items())]
            run(_PG_STATS, {"x": exp, "r": _json_rows(stat_rows)})
        return status

    def prune(self, exp: str, before: int) -> int:
        """Forget event ids first seen before ``before`` (seconds)."""
        sa = require("sqlalchemy")
        seen = self.t["seen"]
        with self._tx("experiment dedupe pruning") as conn:
            res = conn.execute(
                sa.delete(seen).where(seen.c.experiment == exp, seen.c.seen_at < before)
            )
            return int(res.rowcount or 0)

    def read(self, exp: str) -> Read:
        """(units per arm, sums per (arm, metric), units exposed to several arms)."""
        sa = require("sqlalchemy")
        arms, stats = self.t["arms"], self.t["stats"]
        with self._tx("experiment summary") as conn:
            arm_rows = conn.execute(
                sa.select(arms.c.arm, arms.c.n, arms.c.multi).where(arms.c.experiment == exp)
            ).all()
            stat_rows = conn.execute(
                sa.select(stats.c.arm, stats.c.metric, *(stats.c[f] for f in SUM_FIELDS)).where(
                    stats.c.experiment == exp
                )
            ).all()
        arm_rows = [r for r in arm_rows if not r[0].startswith(PHASE_MARK)]
        arm_n = {r[0]: int(r[1]) for r in arm_rows}
        multi = sum(int(r[2]) for r in arm_rows)
        sums = {(r[0], r[1]): [float(v) for v in r[2:]] for r in stat_rows}
        return arm_n, sums, multi

    def phases(self, exp: str) -> PhaseCounts:
        """Units first exposed in each phase, per arm."""
        sa = require("sqlalchemy")
        arms = self.t["arms"]
        with self._tx("experiment phases") as conn:
            rows = conn.execute(
                sa.select(arms.c.arm, arms.c.n).where(
                    arms.c.experiment == exp, arms.c.arm.startswith(PHASE_MARK, autoescape=True)
                )
            ).all()
        out: PhaseCounts = {}
        for field, n in rows:
            phase, arm = parse_phase_field(field)
            out.setdefault(phase, {})[arm] = int(n)
        return out

    def clear(self, exp: str) -> None:
        """Forget every exposure and statistic of ``exp``."""
        sa = require("sqlalchemy")
        with self._tx("experiment reset") as conn:
            for t in self.t.values():
                conn.execute(sa.delete(t).where(t.c.experiment == exp))


# -- Redis -------------------------------------------------------------------------------------


def _lua(name: str) -> str:
    from importlib import resources

    return resources.files("cognitionos.experiments").joinpath(f"lua/{name}.lua").read_text("utf-8")


def _num(v: float) -> str:
    return repr(float(v))


def track_args(specs: Mapping[str, MetricSpec], events: Sequence[RawEvent], now: int) -> list[Any]:
    """ARGV of ``exp_track.lua``: now, then 11 values per event."""
    args: list[Any] = [int(now)]
    for unit, eid, metric, value, den, cov in events:
        s = specs[metric]
        args += [
            unit,
            eid,
            metric,
            s.code,
            _num(value),
            _num(den),
            "" if cov is None else _num(cov),
            "" if s.lo == float("-inf") else _num(s.lo),
            "" if s.hi == float("inf") else _num(s.hi),
            "" if s.den_lo == float("-inf") else _num(s.den_lo),
            "" if s.den_hi == float("inf") else _num(s.den_hi),
        ]
    return args


def expose_args(records: Sequence[tuple[str, str]], phase: int = 0) -> list[Any]:
    """ARGV of ``exp_expose.lua``: the phase's count prefix, then unit, arm per record."""
    args: list[Any] = [phase_field(phase, "")]
    for unit, arm in records:
        args += [unit, arm]
    return args


class RedisStats:
    """Statistics in Redis hashes updated by Lua scripts (``HINCRBYFLOAT`` for the sums).

    Keys of one experiment share its hash tag (``{exp:<key>}``), so each script touches
    one Redis Cluster slot. The script recomputes the unit's contribution exactly as
    :func:`cognitionos.experiments._core.contribution` does.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._expose = store.script(_lua("exp_expose"))
        self._track = store.script(_lua("exp_track"))

    def _keys(self, exp: str, *names: str) -> list[str]:
        return [self.store.key(f"exp:{exp}", n) for n in names]

    def _call(self, script: Any, keys: list[str], args: list[Any], what: str) -> Any:
        from redis.exceptions import RedisError

        try:
            return script(keys, args)
        except RedisError as exc:
            raise StorageError(f"redis store: {what} failed: {exc}") from exc

    def expose(self, exp: str, records: Sequence[tuple[str, str]], phase: int = 0) -> list[bool]:
        """True per record that was the unit's first exposure."""
        if not records:
            return []
        keys = self._keys(exp, "units", "arms", "multi")
        args = expose_args(records, phase)
        reply = self._call(self._expose, keys, args, "experiment exposure")
        return [bool(int(x)) for x in reply]

    def track(
        self,
        exp: str,
        specs: Mapping[str, MetricSpec],
        events: Sequence[RawEvent],
        now: int = 0,
    ) -> list[int]:
        """COUNTED, DUPLICATE or UNEXPOSED per event (one script call per batch)."""
        if not events:
            return []
        keys = self._keys(exp, "seenz", "units", "unit_metrics", "stats")
        reply = self._call(self._track, keys, track_args(specs, events, now), "experiment tracking")
        return [int(x) for x in reply]

    def read(self, exp: str) -> Read:
        """(units per arm, sums per (arm, metric), units exposed to several arms)."""
        from redis.exceptions import RedisError

        arms_key, stats_key = self._keys(exp, "arms", "stats")
        try:
            arm_raw = self.store.client.hgetall(arms_key)
            stat_raw = self.store.client.hgetall(stats_key)
        except RedisError as exc:
            raise StorageError(f"redis store: experiment summary failed: {exc}") from exc
        arm_n: dict[str, int] = {}
        multi = 0
        for k, v in arm_raw.items():
            field = k.decode()
            if field == "\x00multi":
                multi = int(v)
            elif not field.startswith(PHASE_MARK):
                arm_n[field] = int(v)
        sums: dict[tuple[str, str], list[float]] = {}
        index = {f: i for i, f in enumerate(SUM_FIELDS)}
        for k, v in stat_raw.items():
            arm, metric, field = k.decode().split("\x00")
            acc = sums.setdefault((arm, metric), [0.0] * N_SUMS)
            acc[index[field]] = float(v)
        return arm_n, sums, multi

    def phases(self, exp: str) -> PhaseCounts:
        """Units first exposed in each phase, per arm."""
        from redis.exceptions import RedisError

        (arms_key,) = self._keys(exp, "arms")
        try:
            raw = self.store.client.hgetall(arms_key)
        except RedisError as exc:
            raise StorageError(f"redis store: experiment phases failed: {exc}") from exc
        out: PhaseCounts = {}
        for k, v in raw.items():
            field = k.decode()
            if field.startswith(PHASE_MARK):
                phase, arm = parse_phase_field(field)
                out.setdefault(phase, {})[arm] = int(v)
        return out

    def prune(self, exp: str, before: int) -> int:
        """Forget event ids first seen before ``before`` (seconds)."""
        from redis.exceptions import RedisError

        (key,) = self._keys(exp, "seenz")
        try:
            return int(self.store.client.zremrangebyscore(key, "-inf", f"({int(before)}"))
        except RedisError as exc:
            raise StorageError(f"redis store: experiment dedupe pruning failed: {exc}") from exc

    def clear(self, exp: str) -> None:
        """Forget every exposure and statistic of ``exp``."""
        self.store.client.delete(*self._keys(exp, "seen", "seenz", "units", "unit_metrics"))
        self.store.client.delete(*self._keys(exp, "stats"))
        self.store.client.delete(*self._keys(exp, "arms", "multi"))


def stats_backend(store: Any) -> StatsBackend:
    """The statistics backend for ``store`` (by its backend name)."""
    backend = getattr(store, "backend", "")
    if backend == "memory":
        stats = getattr(store, "_cos_experiment_stats", None)
        if stats is None:
            stats = MemoryStats()
            # kept on the store object: engines sharing one memory store share statistics
            store._cos_experiment_stats = stats
        return stats  # type: ignore[no-any-return]
    if backend in ("sqlite", "postgresql"):
        return SQLStats(store)
    if backend == "redis":
        return RedisStats(store)
    from cognitionos.errors import UnsupportedCapability

    raise UnsupportedCapability(backend, "experiment statistics", "ExperimentEngine")
