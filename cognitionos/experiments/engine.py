"""The experiments facade: :class:`ExperimentEngine`.

Definitions live in the store's key-value space (compare-and-set, change-feed reload, as the
flags engine does); assignment reads an immutable compiled snapshot and does no I/O;
exposures and metric events go to the event log and into per-arm sufficient statistics::

    engine = ExperimentEngine(store="sqlite:///app.db")
    engine.create({"key": "checkout-v2", "arms": [{"key": "control"}, {"key": "new"}],
                   "metrics": [{"name": "revenue"}], "status": "running"})
    a = engine.assign("checkout-v2", "u1", {"country": "NL"})
    engine.track_exposure("checkout-v2", "u1")
    engine.track("checkout-v2", "u1", "revenue", 12.5, event_id="order-17")
    engine.summary("checkout-v2")   # [ArmSummary(arm="control", metric="revenue", ...), ...]
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.experiments._analysis import PhaseUnits
from cognitionos.experiments._core import (
    CompiledExperiment,
    check_value,
    compile_experiment,
    empty_sums,
    sums_of,
)
from cognitionos.experiments._ingest import (
    COUNTED,
    DUPLICATE,
    UNEXPOSED,
    RawEvent,
    StatsBackend,
    stats_backend,
)
from cognitionos.experiments._summary import ArmSummary
from cognitionos.experiments.models import (
    Assignment,
    AssignmentReason,
    Experiment,
    ExperimentStatus,
    Phase,
    parse_experiment,
)
from cognitionos.metrics import CounterSet

__all__ = ["ExperimentEngine"]

log = logging.getLogger("cognitionos.experiments")

#: log payloads are compact JSON arrays: ["x", unit, arm, ts] and
#: ["m", unit, event id, metric, value, denominator, covariate, ts] (see events())
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_X_FIELDS = ("unit", "arm", "ts")
_M_FIELDS = ("unit", "event_id", "metric", "value", "denominator", "covariate", "ts")
_STATUS_NAMES = {COUNTED: "counted", DUPLICATE: "duplicate", UNEXPOSED: "unexposed"}
_CAS_ATTEMPTS = 20
#: defaults of (unit_id, metric, value, event_id, denominator, covariate) for short tuples
_TUPLE_DEFAULTS: tuple[Any, ...] = (None, None, 1.0, None, 0.0, None)
#: longest unit id or event id kept (the SQL stores keep them in VARCHAR(300) columns)
MAX_ID_CHARS = 300


def _id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a stored unit/event id, or None when it can.

    Refused the same on every backend (so data moves between them): empty, longer than
    :data:`MAX_ID_CHARS`, a NUL character (PostgreSQL text cannot hold it) or a lone
    surrogate (not encodable as UTF-8).
    """
    if not isinstance(value, str) or not value:
        return "must be a non-empty str"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long, at most {MAX_ID_CHARS}"
    if "\x00" in value:
        return "contains a NUL character"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid text)"
    return None


#: the engine's counters (``cognitionos_experiments_<name>_total`` on Prometheus)
COUNTER_HELP = {
    "assignments": "assign() answers that put the unit in an arm of a running experiment",
    "assignments_outside": "assign() answers outside the experiment (control, with a reason)",
    "exposures": "First exposures recorded (a unit's arm fixed)",
    "exposures_repeated": "Exposures of units already exposed (counted for the report only)",
    "events": "Metric events counted into the statistics",
    "events_duplicate": "Metric events refused as duplicates of an event id seen before",
    "events_unexposed": "Metric events of units not exposed yet (kept out of the statistics)",
}


def _counts(status: list[int], detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(_STATUS_NAMES.values(), 0)
    for s in status:
        out[_STATUS_NAMES[s]] += 1
    if detail:
        out["status"] = [_STATUS_NAMES[s] for s in status]
    return out


class ExperimentEngine:
    """Assigns units to arms and ingests exposures and metric events into arm statistics.

    ``store`` is a storage URL or a store from ``open_store`` (default: a private
    ``memory://`` store). It needs key-value and event-log capabilities; the statistics use
    the backend's own atomic operations (SQL upserts, a Redis Lua script, a lock in memory).
    ``namespace`` prefixes every key so several applications can share one store;
    ``sticky`` is a :class:`~cognitionos.bucketing.StickyBucketService` that keeps units in
    their arm when weights change. ``dedupe_window`` (seconds, default 30 days) bounds the
    exactly-once record: event ids older than the window are forgotten (pruned at most 24
    times per window as events arrive, or by :meth:`prune_dedupe`), so a retry that arrives
    later than that counts again; ``None`` keeps every id forever.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        clock: Clock | None = None,
        namespace: str = "",
        sticky: Any = None,
        log_events: bool = True,
        dedupe_window: float | None = 30 * 86400.0,
    ) -> None:
        if dedupe_window is not None and not (
            isinstance(dedupe_window, (int, float)) and dedupe_window > 0
        ):
            raise ConfigurationError(
                f"dedupe_window={dedupe_window!r} must be a positive number of seconds or None"
            )
        self._dedupe_window = None if dedupe_window is None else float(dedupe_window)
        self._last_prune: dict[str, float] = {}
        self._clock: Clock = clock or SystemClock()
        self._owns_store = False
        if store is None or isinstance(store, str):
            from cognitionos.storage import open_store

            store = open_store(store or "memory://", clock=self._clock)
            self._owns_store = True
        elif not callable(getattr(store, "require", None)):
            raise ConfigurationError(
                f"ExperimentEngine store must be a storage URL or a store from open_store(), "
                f"got {type(store).__name__} {store!r:.80}"
            )
        store.require("kv", "event_log", needed_by="ExperimentEngine")
        self._store = store
        self._namespace = namespace
        self._prefix = f"{namespace}experiments/def/"
        self._sticky = sticky
        self._log_events = log_events
        self._stats: StatsBackend = stats_backend(store)
        #: totals since this engine was made, read by ``EngineCollector`` at scrape time
        self.counters = CounterSet("experiments", COUNTER_HELP, help=COUNTER_HELP)
        self._count_in = self.counters.incrementer("assignments")
        self._count_out = self.counters.incrementer("assignments_outside")
        self._lock = threading.RLock()
        self._snapshot: dict[str, CompiledExperiment] = {}
        self._versions: dict[str, int] = {}
        self._subscription: Any = None
        self.reload()
        if "change_feed" in {str(c) for c in store.capabilities}:
            self._subscription = store.subscribe(self._prefix, self._on_change)

    # -- definitions ---------------------------------------------------------------------------
    def _def_key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def reload(self) -> None:
        """Read every definition from the store and swap the compiled snapshot."""
        with self._lock:
            compiled: dict[str, CompiledExperiment] = {}
            versions: dict[str, int] = {}
            for entry in self._store.scan(self._prefix, limit=100_000):
                key = entry.key[len(self._prefix) :]
                try:
                    exp = parse_experiment(json.loads(entry.value), f"stored experiment {key!r}")
                    compiled[key] = compile_experiment(exp)
                except (ValueError, UnicodeDecodeError) as exc:  # ConfigurationError included
                    log.error("stored experiment %r is invalid and is not served: %s", key, exc)
                    continue
                versions[key] = entry.version
            self._snapshot = compiled
            self._versions = versions

    def _on_change(self, _change: Any) -> None:
        try:
            self.reload()
        except StorageError as exc:
            log.error("reloading experiments failed; still serving the last snapshot: %s", exc)

    def _write(self, exp: Experiment, version: int) -> int | None:
        data = json.dumps(exp.model_dump(mode="json", exclude_defaults=True)).encode()
        return self._store.compare_and_set(self._def_key(exp.key), data, version=version)  # type: ignore[no-any-return]

    def _phased(self, old: Experiment | None, new: Experiment) -> Experiment:
        """``new`` with a phase appended when it runs and its split differs from the last
        phase (starting it, or a change of weights, arms or coverage while it runs)."""
        phases = list(new.phases if old is None else old.phases)
        weights = dict(zip((a.key for a in new.arms), new.weights, strict=True))
        last = phases[-1] if phases else None
        unchanged = last is not None and last.weights == weights and last.coverage == new.coverage
        if new.status != ExperimentStatus.RUNNING or unchanged:
            return new if new.phases == phases else new.model_copy(update={"phases": phases})
        start = self._clock.time_ns() / 1e9
        if last is not None:
            start = max(start, last.start)
        phases.append(Phase(start=start, weights=weights, coverage=new.coverage))
        return parse_experiment(
            {**new.model_dump(mode="json"), "phases": [p.model_dump() for p in phases]},
            f"experiment {new.key!r}",
        )

    def create(self, definition: Experiment | Mapping[str, Any]) -> Experiment:
        """Store a new experiment; ConfigurationError if the key exists or the definition is bad.

        A definition created ``running`` starts its first phase now.
        """
        exp = self._phased(None, parse_experiment(definition))
        compile_experiment(exp)  # a bad targeting condition fails here, before anything is stored
        if self._write(exp, 0) is None:
            raise ConfigurationError(f"experiment {exp.key!r} already exists")
        self.reload()
        return exp

    def update(self, key: str, changes: Mapping[str, Any] | Experiment) -> Experiment:
        """Change fields of a stored experiment (compare-and-set, retried on a concurrent write).

        ``changes`` is a mapping of fields to replace, or a whole :class:`Experiment`.
        Changing arms or weights of a running experiment moves units between arms unless a
        sticky-bucket service is used; bump ``bucket_version`` to re-randomise on purpose.
        Starting the experiment, and every change of its weights, arms or coverage while it
        runs, appends a :class:`Phase` (start time, weights, coverage) to ``phases``; the
        stored history of phases is kept (``changes`` cannot rewrite it).
        """
        for _ in range(_CAS_ATTEMPTS):
            entry = self._store.get(self._def_key(key))
            if entry is None:
                raise ConfigurationError(f"no experiment {key!r}")
            current = json.loads(entry.value)
            old = parse_experiment(current, f"stored experiment {key!r}")
            if isinstance(changes, Experiment):
                new = changes
            else:
                new = parse_experiment({**current, **dict(changes)}, f"experiment {key!r}")
            if new.key != key:
                raise ConfigurationError(f"experiment {key!r} cannot be renamed to {new.key!r}")
            new = self._phased(old, new)
            compile_experiment(new)
            if self._write(new, entry.version) is not None:
                self.reload()
                return new
        raise StorageError(f"experiment {key!r}: too many concurrent writers, update not applied")

    def get(self, key: str) -> Experiment:
        """The definition of ``key`` as currently served; ConfigurationError if there is none."""
        compiled = self._snapshot.get(key)
        if compiled is None:
            raise ConfigurationError(f"no experiment {key!r}")
        return compiled.definition

    def list(self) -> builtins.list[Experiment]:
        """Every served experiment, ordered by key."""
        snap = self._snapshot
        return [snap[k].definition for k in sorted(snap)]

    def start(self, key: str) -> Experiment:
        """Set ``key`` running: from now on it assigns units."""
        return self.update(key, {"status": ExperimentStatus.RUNNING.value})

    def stop(self, key: str) -> Experiment:
        """Stop ``key``: assignment answers the control arm, not in the experiment."""
        return self.update(key, {"status": ExperimentStatus.STOPPED.value})

    def delete(self, key: str, *, keep_data: bool = False) -> bool:
        """Remove the definition (and its statistics unless ``keep_data``); True if it existed."""
        existed = bool(self._store.delete(self._def_key(key)))
        if not keep_data:
            self._stats.clear(self._scoped(key))
        self.reload()
        return existed

    # -- assignment ----------------------------------------------------------------------------
    def assign(
        self, key: str, unit_id: str, attributes: Mapping[str, Any] | None = None
    ) -> Assignment:
        """The arm of ``unit_id`` in experiment ``key``; never raises for bad attributes.

        The unit id is also the value of the experiment's ``hash_attribute`` for targeting.
        Outside the experiment (not running, not targeted, outside namespace, holdout or
        coverage) the answer is the control arm with ``in_experiment=False`` and a reason.
        """
        compiled = self._snapshot.get(key)
        if compiled is None:
            self._count_out()
            return Assignment(None, False, None, key, AssignmentReason.UNKNOWN_EXPERIMENT)
        unit = unit_id if type(unit_id) is str else str(unit_id)
        attrs = dict(attributes) if isinstance(attributes, Mapping) else {}
        attrs[compiled.definition.hash_attribute] = unit
        answer = compiled.assign(unit, attrs, self._sticky)
        if answer.in_experiment:
            self._count_in()
        else:
            self._count_out()
        return answer

    # -- ingestion -----------------------------------------------------------------------------
    def _scoped(self, key: str) -> str:
        return f"{self._namespace}{key}"

    def _compiled(self, key: str) -> CompiledExperiment:
        compiled = self._snapshot.get(key)
        if compiled is None:
            raise ConfigurationError(f"no experiment {key!r}")
        return compiled

    def _append(self, key: str, payloads: builtins.list[bytes]) -> None:
        if self._log_events and payloads:
            self._store.append_many(f"{self._namespace}experiments.{key}", payloads)

    def track_exposure(
        self,
        key: str,
        unit_id: str,
        *,
        variant: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Assignment:
        """Record that ``unit_id`` saw the experiment; returns the assignment recorded.

        Without ``variant`` the unit is assigned first and recorded only when it is in the
        experiment. The first exposure fixes the unit's arm; exposures to another arm later
        are counted (see :meth:`exposure_report`) and the unit stays in its first arm.
        """
        if variant is None:
            a = self.assign(key, unit_id, attributes)
            if not a.in_experiment:
                return a
            variant = a.variant
        else:
            compiled = self._compiled(key)
            if variant not in compiled.keys:
                raise ConfigurationError(
                    f"experiment {key!r} has no arm {variant!r} (arms: {', '.join(compiled.keys)})"
                )
            a = Assignment(variant, True, None, key, AssignmentReason.ASSIGNED)
        assert variant is not None
        self.track_exposures(key, [(str(unit_id), variant)])
        return a

    def track_exposures(self, key: str, records: Iterable[tuple[str, str]]) -> int:
        """Record many ``(unit_id, variant)`` exposures in one call; returns first exposures."""
        batch = self._exposure_batch(key, records)
        if not batch:
            return 0
        first = self._stats.expose(self._scoped(key), batch, self._phase(key))
        self._append(key, self._exposure_payloads(batch, first))
        n_first = sum(first)
        self.counters.add("exposures", n_first)
        self.counters.add("exposures_repeated", len(batch) - n_first)
        return n_first

    def _phase(self, key: str) -> int:
        compiled = self._snapshot.get(key)
        return compiled.definition.phase if compiled is not None else 0

    def _exposure_batch(
        self, key: str, records: Iterable[tuple[str, str]]
    ) -> builtins.list[tuple[str, str]]:
        compiled = self._compiled(key)
        arms = set(compiled.keys)
        batch: list[tuple[str, str]] = []
        for unit, arm in records:
            if arm not in arms:
                raise ConfigurationError(f"experiment {key!r} has no arm {arm!r}")
            problem = _id_problem(unit)
            if problem is not None:
                raise ConfigurationError(f"unit id {unit!r:.60} {problem}")
            batch.append((unit, arm))
        return batch

    def _exposure_payloads(
        self, batch: builtins.list[tuple[str, str]], first: builtins.list[bool]
    ) -> builtins.list[bytes]:
        now = self._clock.time_ns()
        return [
            _encode(("x", u, a, now)).encode() for (u, a), f in zip(batch, first, strict=True) if f
        ]

    def track(
        self,
        key: str,
        unit_id: str,
        metric: str,
        value: float = 1.0,
        event_id: str | None = None,
        *,
        denominator: float = 0.0,
        covariate: float | None = None,
    ) -> str:
        """Record one metric event: ``"counted"``, ``"duplicate"`` or ``"unexposed"``.

        Exactly once per ``(unit_id, event_id)``: a retried event with the same id is a
        ``"duplicate"`` (no id: a fresh one is generated, so nothing deduplicates).
        ``denominator`` feeds ratio metrics; ``covariate`` sets the unit's pre-period
        value of this metric for CUPED (replacing an earlier one). Events of a unit that
        was not exposed yet are ``"unexposed"``: kept out of the statistics.
        """
        counts = self.track_many(
            key, [(unit_id, metric, value, event_id, denominator, covariate)], _detail=True
        )
        return str(counts["status"][0])

    def track_many(
        self, key: str, events: Iterable[Any], *, _detail: bool = False
    ) -> dict[str, Any]:
        """Record many metric events in one store round trip; returns counts per outcome.

        Each event is a mapping with ``unit_id``, ``metric`` and optional ``value`` (1),
        ``event_id``, ``denominator``, ``covariate``; or a tuple in that order.
        """
        batch = self._event_batch(key, events)
        now = self._clock.time_ns()
        scoped = self._scoped(key)
        specs = self._compiled(key).specs
        status = self._stats.track(scoped, specs, batch, now // 1_000_000_000) if batch else []
        self._maybe_prune(scoped, now / 1e9)
        self._append(key, self._event_payloads(batch, status, now))
        counts = _counts(status, _detail)
        self.counters.add("events", counts["counted"])
        self.counters.add("events_duplicate", counts["duplicate"])
        self.counters.add("events_unexposed", counts["unexposed"])
        return counts

    def _event_batch(self, key: str, events: Iterable[Any]) -> builtins.list[RawEvent]:
        """Validate and normalise metric events (ConfigurationError naming the bad one)."""
        compiled = self._compiled(key)
        specs = compiled.specs
        batch: list[RawEvent] = []
        for i, ev in enumerate(events):
            if isinstance(ev, Mapping):
                unit = ev.get("unit_id")
                metric = ev.get("metric")
                value = ev.get("value", 1.0)
                eid = ev.get("event_id")
                den = ev.get("denominator", 0.0)
                cov = ev.get("covariate")
            else:
                try:
                    t = tuple(ev)
                    unit, metric, value, eid, den, cov = t + _TUPLE_DEFAULTS[len(t) :]
                except (TypeError, ValueError):
                    raise ConfigurationError(
                        f"event {i} must be a mapping or a tuple, got {type(ev).__name__}"
                    ) from None
            problem = _id_problem(unit)
            if problem is not None or not isinstance(unit, str):  # (the second: for mypy)
                raise ConfigurationError(f"event {i}: unit id {unit!r:.60} {problem}")
            if not isinstance(metric, str):
                raise ConfigurationError(
                    f"event {i}: metric must be a str, got {type(metric).__name__}"
                )
            if metric not in specs:
                compiled.definition.metric(metric)  # raises, naming the metric
            v = value if type(value) is float else check_value(value, f"event {i} value")
            if v != v or v in (float("inf"), float("-inf")):
                raise ConfigurationError(f"event {i} value must be finite, got {value!r}")
            d = den if type(den) is float else check_value(den, f"event {i} denominator")
            c = None if cov is None else check_value(cov, f"event {i} covariate")
            if eid is None:
                eid = uuid.uuid4().hex
            else:
                if not isinstance(eid, str):
                    eid = str(eid)
                problem = _id_problem(eid)
                if problem is not None:
                    raise ConfigurationError(f"event {i}: event id {eid!r:.60} {problem}")
            batch.append((unit, eid, str(metric), v, d, c))
        return batch

    @staticmethod
    def _event_payloads(
        batch: builtins.list[RawEvent], status: builtins.list[int], now: int
    ) -> builtins.list[bytes]:
        return [
            _encode(("m", *ev, now)).encode()
            for ev, s in zip(batch, status, strict=True)
            if s == COUNTED
        ]

    def _maybe_prune(self, scoped: str, now_s: float) -> None:
        window = self._dedupe_window
        if window is None or now_s - self._last_prune.get(scoped, -math.inf) < window / 24:
            return
        self._last_prune[scoped] = now_s
        try:
            self._stats.prune(scoped, int(now_s - window))
        except StorageError as exc:  # the events are in; pruning is retried later
            log.warning("pruning old event ids of %r failed: %s", scoped, exc)

    def prune_dedupe(self, key: str, *, older_than: float | None = None) -> int:
        """Forget the event ids of ``key`` first seen more than ``older_than`` seconds ago
        (default: the engine's ``dedupe_window``); returns how many were removed."""
        self._compiled(key)
        age = self._dedupe_window if older_than is None else older_than
        if age is None or not (isinstance(age, (int, float)) and age >= 0):
            raise ConfigurationError(
                f"older_than={older_than!r} must be a non-negative number of seconds "
                "(the engine keeps ids forever: dedupe_window=None)"
            )
        now_s = self._clock.time_ns() / 1e9
        return self._stats.prune(self._scoped(key), int(now_s - age))

    # -- reading -------------------------------------------------------------------------------
    def summary(self, key: str) -> builtins.list[ArmSummary]:
        """Sufficient statistics per arm and metric (arms in definition order, then metrics).

        ``n`` is the number of units exposed to the arm; units without events count as 0.
        """
        compiled = self._compiled(key)
        arm_n, sums, _multi = self._stats.read(self._scoped(key))
        out: list[ArmSummary] = []
        for m in compiled.definition.metrics:
            for arm in compiled.keys:
                rows = sums.get((arm, m.name)) or empty_sums()
                fields: dict[str, Any] = sums_of(rows)
                out.append(
                    ArmSummary(arm=arm, metric=m.name, n=arm_n.get(arm, 0), kind=m.kind, **fields)
                )
        return out

    def exposure_report(self, key: str) -> dict[str, Any]:
        """Units per arm, how many units were exposed to several arms (they stay in their
        first arm; the count is what an analysis that excludes them would drop) and the
        units first exposed in each phase."""
        compiled = self._compiled(key)
        arm_n, _sums, multi = self._stats.read(self._scoped(key))
        return {
            "units": {arm: arm_n.get(arm, 0) for arm in compiled.keys},
            "multiple_exposures": multi,
            "phases": [
                {
                    "phase": i,
                    "start": p.start,
                    "weights": dict(p.weights),
                    "coverage": compiled.definition.phases[i].coverage,
                    "units": dict(p.units),
                }
                for i, p in enumerate(self.phase_units(key))
            ],
        }

    def phase_units(self, key: str) -> builtins.list[PhaseUnits]:
        """Each phase's weights and the units first exposed to each arm during it, for
        ``analyze(..., phases=...)`` (SRM per phase). Exposures recorded before the
        experiment had phases count in phase 0."""
        compiled = self._compiled(key)
        counts = self._stats.phases(self._scoped(key))
        out: builtins.list[PhaseUnits] = []
        for i, p in enumerate(compiled.definition.phases):
            seen = counts.get(i, {})
            arms = dict.fromkeys([*p.weights, *seen])
            units = {a: seen.get(a, 0) for a in arms}
            out.append(PhaseUnits(weights=dict(p.weights), units=units, start=p.start))
        return out

    def events(
        self, key: str, *, after: int = 0, limit: int = 1000
    ) -> builtins.list[dict[str, Any]]:
        """Logged exposures and counted metric events of ``key`` (oldest first), as dicts."""
        stream = f"{self._namespace}experiments.{key}"
        out: builtins.list[dict[str, Any]] = []
        for e in self._store.read(stream, after=after, limit=limit):
            kind, *values = json.loads(e.payload)
            names = _X_FIELDS if kind == "x" else _M_FIELDS
            out.append(
                {
                    "seq": e.seq,
                    "type": "exposure" if kind == "x" else "metric",
                    **dict(zip(names, values, strict=True)),
                }
            )
        return out

    # -- shipping ------------------------------------------------------------------------------
    def ship(
        self,
        key: str,
        variant: str,
        *,
        flags: Any = None,
        flag_key: str | None = None,
        actor: str | None = None,
    ) -> Any:
        """Turn the winning ``variant`` into a flag rollout and stop the experiment.

        Writes flag ``flag_key`` (default: the experiment key) through the flags engine's
        public API (``flags``, else a ``FlagEngine`` on this engine's store): units the
        experiment targets get the winner's value, everyone else the control's value.
        Returns the :class:`~cognitionos.flags.FlagDefinition` written.
        """
        compiled = self._compiled(key)
        exp = compiled.definition
        if variant not in compiled.keys:
            raise ConfigurationError(
                f"experiment {key!r} has no arm {variant!r} (arms: {', '.join(compiled.keys)})"
            )
        from cognitionos.flags import FlagDefinition, FlagEngine, Rule

        winner = compiled.values[compiled.keys.index(variant)]
        control = compiled.values[0]
        flag = FlagDefinition(
            key=flag_key or key,
            description=f"shipped from experiment {key!r}: arm {variant!r}",
            default_value=winner if exp.condition is None else control,
            rules=[]
            if exp.condition is None
            else [Rule(id=f"ship-{key}", condition=exp.condition, force=True, value=winner)],
            metadata={"experiment": key, "variant": variant},
        )
        owned = flags is None
        engine = FlagEngine(store=self._store) if owned else flags
        try:
            engine.set_flag(flag, actor=actor)
        finally:
            if owned:
                engine.close()
        self.update(key, {"status": ExperimentStatus.STOPPED.value, "shipped": variant})
        return flag

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        """The store holding definitions, events and statistics."""
        return self._store

    def close(self) -> None:
        """Stop following the change feed (and close the store if this engine opened it)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> ExperimentEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExperimentEngine(experiments={len(self._snapshot)}, store={self._store!r})"
