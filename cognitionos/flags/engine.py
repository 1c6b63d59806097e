"""The flags facade: :class:`FlagEngine`.

An engine holds one immutable compiled snapshot and swaps it atomically when
definitions change; evaluation never blocks on I/O and never raises for bad
attributes::

    engine = FlagEngine.from_growthbook({"features": {"dark-mode": {"defaultValue": False}}})
    engine.evaluate("dark-mode", {"id": "u1"}, default=False).value
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.flags._core import Snapshot, compile_snapshot
from cognitionos.flags._growthbook import (
    experiment_from_growthbook,
    flag_set_from_growthbook,
    validation_error,
)
from cognitionos.flags._input import load_document
from cognitionos.flags._store import StoreSync
from cognitionos.flags.models import (
    ErrorCode,
    Evaluation,
    EvaluationOptions,
    ExperimentResult,
    FlagDefinition,
    FlagSet,
    Reason,
)
from cognitionos.metrics import CounterSet

__all__ = ["FlagEngine"]

log = logging.getLogger("cognitionos.flags")

_COUNTER_HELP = {
    "invalid_flags": "Flag definitions that failed to load and evaluate to PARSE_ERROR",
    "reload_errors": "Failures to reload definitions from the store (last snapshot kept)",
}


class FlagEngine:
    """Evaluates feature flags from a compiled, atomically swappable snapshot.

    Build one from definitions (``FlagEngine(FlagSet(...))``), a vendor payload
    (:meth:`from_growthbook`, :meth:`from_unleash`), exported JSON
    (:meth:`from_json`) or a store (``FlagEngine(store="sqlite:///flags.db")``)::

        engine = FlagEngine.from_json({"flags": [{"key": "beta", "default_value": True}]})
        engine.is_on("beta", {"id": "u1"})  # True
    """

    def __init__(
        self,
        definitions: FlagSet | Iterable[FlagDefinition] | None = None,
        *,
        store: Any = None,
        environment: str | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        allow_cycles: bool = False,
        hostname: str | None = None,
        actor: str = "system",
        track_evaluations: bool = False,
        namespace: str = "",
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._stats: dict[str, list[Any]] | None = {} if track_evaluations else None
        self._init_counters()
        self._rng = rng or random.Random()
        self._environment = environment
        self._allow_cycles = allow_cycles
        self._implicit: dict[str, Any] = {}
        if environment is not None:
            self._implicit["environment"] = environment
        if hostname is not None:
            self._implicit["hostname"] = hostname
        self._flatten_properties = False
        self._stamp_time = False
        self._sync: Any = None
        if isinstance(definitions, FlagSet):
            fs = definitions
        else:
            try:
                fs = FlagSet(flags=list(definitions or []))
            except ValidationError as exc:
                raise validation_error(exc, "flag set") from None
        self._reported: frozenset[tuple[str, str]] = frozenset()
        self._snapshot: Snapshot = compile_snapshot(
            fs, environment=environment, allow_cycles=allow_cycles
        )
        self._report_invalid(self._snapshot)
        if store is not None:
            self._sync = StoreSync(
                store,
                clock=self._clock,
                publish=self._publish_stored,
                environment=environment,
                allow_cycles=allow_cycles,
                actor=actor,
                namespace=namespace,
                on_reload_error=self._reload_failed,
            )

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_growthbook(
        cls,
        payload: Mapping[str, Any] | str,
        *,
        strict: bool = False,
        environment: str | None = None,
        clock: Clock | None = None,
        track_evaluations: bool = False,
    ) -> FlagEngine:
        """Engine for a GrowthBook SDK payload (``{"features": ..., "savedGroups": ...}``).

        By default the engine loads what it can, as the GrowthBook SDK does: unknown
        operators and invalid regexes never match, and a feature that cannot be
        loaded at all evaluates to ERROR/PARSE_ERROR (listed in
        ``engine.definitions.invalid``) while the others work. ``strict=True``
        rejects the whole payload instead, naming the first problem (for CI).
        Prerequisite cycles are always accepted and reported per evaluation, as
        GrowthBook does.
        """
        data = load_document(payload, "GrowthBook payload")
        fs = flag_set_from_growthbook(data, strict=strict)
        engine = cls.__new__(cls)
        engine._init_bare(clock, environment, track_evaluations=track_evaluations)
        engine._install(
            compile_snapshot(
                fs, environment=environment, allow_cycles=True, strict=strict, isolate=not strict
            )
        )
        engine._allow_cycles = True
        return engine

    @classmethod
    def from_unleash(
        cls,
        payload: Mapping[str, Any] | str,
        *,
        environment: str | None = None,
        app_name: str | None = None,
        hostname: str | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        track_evaluations: bool = False,
        strict: bool = False,
    ) -> FlagEngine:
        """Engine for an Unleash client API payload (``/api/client/features``).

        Attributes use Unleash context names (``userId``, ``sessionId``,
        ``remoteAddress``, ``properties``...); ``environment``, ``app_name`` and
        ``hostname`` fill the context fields the SDK would fill itself. A toggle
        that cannot be loaded evaluates to ERROR/PARSE_ERROR while the others
        work; ``strict=True`` rejects the whole payload instead (for CI).
        Unknown strategies, operators and invalid regexes never match either way,
        as in the Unleash SDKs.
        """
        from cognitionos.flags._unleash import flag_set_from_unleash

        data = load_document(payload, "Unleash payload")
        fs = flag_set_from_unleash(data, strict=strict)
        engine = cls.__new__(cls)
        engine._init_bare(clock, None, rng, track_evaluations=track_evaluations)
        engine._allow_cycles = True
        engine._install(compile_snapshot(fs, allow_cycles=True, strict=False, isolate=not strict))
        engine._flatten_properties = True
        if environment is not None:
            engine._implicit["environment"] = environment
        if app_name is not None:
            engine._implicit["appName"] = app_name
        engine._implicit["hostname"] = hostname if hostname is not None else _hostname()
        return engine

    @classmethod
    def from_flagd(
        cls,
        payload: Mapping[str, Any] | str,
        *,
        clock: Clock | None = None,
        track_evaluations: bool = False,
        strict: bool = False,
        fractional: str = "cbor",
    ) -> FlagEngine:
        """Engine for flagd flag definitions (``{"flags": {...}, "$evaluators": {...}}``).

        Targeting is flagd's JsonLogic (with ``fractional``, ``sem_ver``,
        ``starts_with``, ``ends_with`` and ``$ref``); the context's ``targetingKey``
        feeds ``fractional``, and ``$flagd.timestamp`` comes from ``clock``. The
        OpenFeature spec's ``test-flags.json`` shape (``contextEvaluator``) loads too.
        A flag that cannot be loaded (say, an unknown JsonLogic operation) evaluates
        to ERROR/PARSE_ERROR while the others work; ``strict=True`` rejects the
        whole document instead (for CI). ``fractional="legacy"`` buckets
        ``fractional`` as flagd did before it hashed CBOR-encoded keys (``"cbor"``,
        the default, is flagd's current bucketing).
        """
        from cognitionos.flags._flagd import flag_set_from_flagd, with_fractional

        data = load_document(payload, "flagd payload")
        fs = with_fractional(flag_set_from_flagd(data, strict=strict), fractional)
        engine = cls.__new__(cls)
        engine._init_bare(clock, None, track_evaluations=track_evaluations)
        engine._install(compile_snapshot(fs, isolate=not strict))
        engine._stamp_time = any(f.rules for f in fs.flags)
        return engine

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str, **kwargs: Any) -> FlagEngine:
        """Engine for our own export format (see :meth:`export`)."""
        raw = load_document(data, "flag set")
        try:
            fs = FlagSet.model_validate(raw)
        except ValidationError as exc:
            raise validation_error(exc, "flag set") from None
        return cls(fs, **kwargs)

    def _init_bare(
        self,
        clock: Clock | None,
        environment: str | None,
        rng: random.Random | None = None,
        *,
        track_evaluations: bool = False,
    ) -> None:
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._environment = environment
        self._allow_cycles = False
        self._implicit = {} if environment is None else {"environment": environment}
        self._flatten_properties = False
        self._stamp_time = False
        self._sync = None
        self._stats = {} if track_evaluations else None
        self._reported = frozenset()
        self._init_counters()

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(
        self,
        key: str,
        attributes: Mapping[str, Any] | None = None,
        default: Any = None,
        *,
        options: EvaluationOptions | None = None,
    ) -> Evaluation:
        """Which value of flag ``key`` the user described by ``attributes`` gets.

        Never raises for bad attributes: the answer is then ``default`` with
        reason ERROR and an error code.
        """
        snap = self._snapshot
        attrs: Any = {} if attributes is None else attributes
        if type(attrs) is not dict:
            if not isinstance(attrs, Mapping):
                return _error(
                    key, default, ErrorCode.INVALID_CONTEXT, "attributes must be a mapping"
                )
            attrs = dict(attrs)
        if self._implicit or self._flatten_properties or self._stamp_time:
            attrs = self._complete(attrs)
        try:
            now = self._clock.time() if snap.uses_time else 0.0
            ev = snap.evaluate(key, attrs, default, now, options, self._rng)
        except Exception as exc:  # a hostile attribute value must not break the caller
            ev = _error(key, default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")
        if self._stats is not None:
            self._record(ev)
        return ev

    def _init_counters(self) -> None:
        #: invalid flags and reload failures, plus totals per (flag, variant or reason)
        #: for EngineCollector (those kept with track_evaluations)
        self.counters = CounterSet("flags", _COUNTER_HELP, help=_COUNTER_HELP)
        self._evaluations = self.counters.labelled(
            "evaluations", "flag", "variant", help="Flag evaluations by flag and variant or reason"
        )

    def _record(self, ev: Evaluation) -> None:
        # slot: [last evaluated ns, up to two distinct values seen, total already flushed]
        slot = self._stats.get(ev.flag_key) if self._stats is not None else None
        if slot is None:
            slot = self._stats.setdefault(ev.flag_key, [0, [], 0])  # type: ignore[union-attr]
        slot[0] = self._clock.time_ns()
        if len(slot[1]) < 2:
            try:
                text = json.dumps(ev.value, sort_keys=True)
            except (TypeError, ValueError):
                text = repr(ev.value)
            if text not in slot[1]:
                slot[1].append(text)
        variant = ev.variant if ev.variant is not None else str(ev.reason)
        self._evaluations.inc((ev.flag_key, variant))  # exact under threads, no lock

    def evaluation_counts(self) -> dict[tuple[str, str], int]:
        """Evaluations per ``(flag, variant or reason)`` (needs ``track_evaluations=True``).

        Meant to be read at scrape time by a metrics collector.
        """
        if self._stats is None:
            return {}
        return {(key, variant): n for (key, variant), n in self._evaluations.snapshot().items()}

    def flush_stats(self) -> None:
        """Write evaluation statistics to the store, for the stale-flag report of any process."""
        if self._stats is None:
            return
        totals: dict[str, int] = {}
        for (key, _variant), n in self._evaluations.snapshot().items():
            totals[key] = totals.get(key, 0) + n
        slots = list(self._stats.items())
        stats = {k: (v[0], list(v[1]), totals.get(k, 0) - v[2]) for k, v in slots}
        self._require_store().flush_stats(stats)
        for key, slot in slots:
            slot[2] = totals.get(key, 0)

    def is_on(
        self,
        key: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        options: EvaluationOptions | None = None,
    ) -> bool:
        """Whether the flag's value is truthy for these attributes (False if missing or failing)."""
        return self.evaluate(key, attributes, False, options=options).on

    def get_variant(self, key: str, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The flag's variant in the Unleash SDK shape (``getVariant``), for any flag.

        Returns ``{"name", "enabled", "feature_enabled"}`` plus ``"payload"`` when the
        variant has one (Unleash payloads keep their ``{"type", "value"}`` form). A flag
        that is off, missing or failing, or on without a variant, answers Unleash's
        ``{"name": "disabled", "enabled": False, ...}``::

            engine.get_variant("checkout", {"userId": "u1"})
            # {"name": "blue", "enabled": True, "feature_enabled": True, "payload": {...}}
        """
        ev = self.evaluate(key, attributes, False)
        feature_enabled = ev.error_code is None and ev.reason not in _OFF_REASONS and ev.on
        if not feature_enabled or ev.variant is None:
            return {"name": "disabled", "enabled": False, "feature_enabled": feature_enabled}
        out: dict[str, Any] = {"name": ev.variant, "enabled": True, "feature_enabled": True}
        payload = ev.metadata.get("payload") if ev.metadata else None
        if payload is not None:
            out["payload"] = payload
        return out

    def evaluate_all(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        options: EvaluationOptions | None = None,
    ) -> dict[str, Evaluation]:
        """Every flag evaluated for one user, e.g. to bootstrap a client."""
        return {k: self.evaluate(k, attributes, options=options) for k in self._snapshot.keys}

    def run(
        self,
        experiment: Mapping[str, Any],
        attributes: Mapping[str, Any] | None = None,
        *,
        options: EvaluationOptions | None = None,
    ) -> ExperimentResult:
        """Run an inline GrowthBook experiment (``{"key": ..., "variations": [...]}``)."""
        rule, active, forced = experiment_from_growthbook(experiment)
        attrs = dict(attributes or {})
        snap = self._snapshot
        now = self._clock.time() if snap.uses_time else 0.0
        return snap.run_experiment(
            rule, attrs, now, options, self._rng, active=active, force=forced
        )

    def _complete(self, attrs: dict[str, Any]) -> dict[str, Any]:
        out = attrs
        if self._flatten_properties:
            props = attrs.get("properties")
            if isinstance(props, Mapping):
                out = {**props, **attrs}
        if self._implicit:
            missing = {k: v for k, v in self._implicit.items() if k not in out}
            if missing:
                out = {**out, **missing}
        if (self._flatten_properties or self._stamp_time) and "currentTime" not in out:
            out = {**out, "currentTime": self._clock.time()}
        return out

    # -- definitions ------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The compiled snapshot currently served (immutable)."""
        return self._snapshot

    @property
    def definitions(self) -> FlagSet:
        """The definitions behind the current snapshot."""
        return self._snapshot.definitions

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of every flag, in definition order."""
        return self._snapshot.keys

    def replace(self, definitions: FlagSet) -> None:
        """Compile ``definitions`` and swap them in atomically (readers never see a mix)."""
        self._install(
            compile_snapshot(
                definitions,
                environment=self._environment,
                version=self._snapshot.version + 1,
                allow_cycles=self._allow_cycles,
            )
        )

    def _publish_stored(self, definitions: FlagSet) -> None:
        # what a store holds is compiled flag by flag: one bad definition (say, from
        # a newer release) turns into one PARSE_ERROR flag, never a failed reload
        self._install(
            compile_snapshot(
                definitions,
                environment=self._environment,
                version=self._snapshot.version + 1,
                allow_cycles=self._allow_cycles,
                isolate=True,
            )
        )

    def _install(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._report_invalid(snapshot)

    def _report_invalid(self, snapshot: Snapshot) -> None:
        """Count and log each invalid flag once (again only if its reason changes)."""
        current = frozenset(snapshot.invalid.items())
        for key, reason in sorted(current - self._reported):
            self.counters.inc("invalid_flags")
            log.error("flag %r is invalid and evaluates to PARSE_ERROR: %s", key, reason)
        self._reported = current

    def _reload_failed(self, exc: Exception) -> None:
        self.counters.inc("reload_errors")
        log.error(
            "reloading flags from the store failed; still serving snapshot version %d: %s: %s",
            self._snapshot.version,
            type(exc).__name__,
            exc,
        )

    def export(self) -> dict[str, Any]:
        """The definitions as JSON-ready data; :meth:`from_json` reads it back."""
        return self._snapshot.definitions.model_dump(mode="json", exclude_defaults=True)

    # -- store-backed operation ------------------------------------------------------------------
    def set_flag(self, flag: FlagDefinition, *, actor: str | None = None) -> None:
        """Create or replace one flag in the store (audit-logged) and serve it at once."""
        self._require_store().set_flag(flag, actor=actor)

    def delete_flag(self, key: str, *, actor: str | None = None) -> bool:
        """Remove one flag from the store; True if it existed."""
        return bool(self._require_store().delete_flag(key, actor=actor))

    def toggle(self, key: str, enabled: bool, *, actor: str | None = None) -> None:
        """Switch a stored flag on or off (the kill switch)."""
        self._require_store().toggle(key, enabled, actor=actor)

    def audit(self, key: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded changes (oldest first), optionally for one flag."""
        return list(self._require_store().audit(key, limit=limit))

    def stale_flags(
        self, *, unchanged_days: float = 30.0, unevaluated_days: float = 30.0
    ) -> list[dict[str, Any]]:
        """Flags not changed, not evaluated, or always answering the same value for N days."""
        return list(
            self._require_store().stale(
                unchanged_days=unchanged_days, unevaluated_days=unevaluated_days
            )
        )

    def set_saved_group(self, name: str, members: list[Any], *, actor: str | None = None) -> None:
        """Create or replace a saved group (segment) in the store."""
        self._require_store().set_saved_group(name, members, actor=actor)

    def import_flags(self, definitions: FlagSet, *, actor: str | None = None) -> int:
        """Write many flags to the store at once (validated together); returns how many changed."""
        return int(self._require_store().import_set(definitions, actor=actor))

    def refresh(self) -> None:
        """Reload every definition from the store now (the change feed does this by itself)."""
        self._require_store().reload()

    def close(self) -> None:
        """Stop following the store's change feed."""
        if self._sync is not None:
            self._sync.close()

    def _require_store(self) -> Any:
        if self._sync is None:
            raise ConfigurationError(
                "this FlagEngine has no store; pass store=... to persist flags"
            )
        return self._sync

    def __enter__(self) -> FlagEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FlagEngine(flags={len(self._snapshot)}, version={self._snapshot.version})"


_OFF_REASONS = frozenset({Reason.DISABLED, Reason.PREREQUISITE_FAILED, Reason.ERROR})


def _error(key: str, default: Any, code: ErrorCode, message: str) -> Evaluation:
    return Evaluation(
        flag_key=key, value=default, reason=Reason.ERROR, error_code=code, error_message=message
    )


def _hostname() -> str:
    import os
    import socket

    return os.environ.get("HOSTNAME") or socket.gethostname()
