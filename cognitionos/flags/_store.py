"""Flag definitions kept in a store, hot-swapped from its change feed, with an audit trail.

Layout inside the store (all keys under ``<namespace>flags/``; the namespace is
empty by default and lets several applications or environments share one store):

====================================  ===================================================
``<ns>flags/def/<key>``               one :class:`FlagDefinition` as JSON (versioned)
``<ns>flags/groups``                  saved groups as JSON (key-value)
``<ns>flags/stats/<key>``             last evaluation time and distinct values seen
stream ``<ns>flags.audit``            one event per change: who, when, action, diff
====================================  ===================================================

Every write validates what it writes first (unknown operators, bad regexes
and prerequisite cycles through it are rejected before anything is stored),
writes with compare-and-set, appends the audit event, and swaps the local
snapshot at once; other processes follow through the change feed.

Reading is forgiving, writing is strict: a stored flag this release cannot
use (invalid JSON, a wrong value, an operator it does not know) becomes one
invalid flag that evaluates to PARSE_ERROR, while the other flags are served
and writes go on; fields it does not know are ignored (forward compatibility).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from cognitionos.clock import Clock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.flags._core import compile_snapshot
from cognitionos.flags._growthbook import validation_error
from cognitionos.flags.models import (
    _IGNORE_UNKNOWN_FIELDS,
    _IGNORED_FIELDS,
    FlagDefinition,
    FlagSet,
)

__all__ = ["AUDIT_STREAM", "StoreSync", "diff"]

log = logging.getLogger("cognitionos.flags")

#: audit stream name in the default (empty) namespace
AUDIT_STREAM = "flags.audit"
_NS_PER_DAY = 86_400 * 1_000_000_000
_MAX_SCAN = 100_000


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Field-level differences between two JSON values: ``[{"path", "before", "after"}]``."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[dict[str, Any]] = []
        for k in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{k}" if path else str(k)
            out.extend(diff(before.get(k), after.get(k), sub))
        return out
    if before == after and type(before) is type(after):
        return []
    return [{"path": path or "<root>", "before": before, "after": after}]


def _dump(flag: FlagDefinition) -> dict[str, Any]:
    return flag.model_dump(mode="json", exclude_defaults=True)


class _Stored:
    """What one read of the store found: the flag set and, per key, version and raw JSON."""

    __slots__ = ("flags", "raw", "versions")

    def __init__(self, flags: FlagSet, versions: dict[str, int], raw: dict[str, Any]) -> None:
        self.flags = flags
        self.versions = versions
        self.raw = raw

    def get(self, key: str) -> FlagDefinition | None:
        return next((f for f in self.flags.flags if f.key == key), None)


class StoreSync:
    """Keeps an engine's snapshot equal to the definitions in a store.

    The engine stays out of this module (no import cycle): it hands over its
    clock, environment and cycle policy, a ``publish`` callable that installs a
    flag set (compiled so one invalid flag never hides the others) and an
    ``on_reload_error`` callable told when following the change feed fails.
    """

    def __init__(
        self,
        store: Any,
        *,
        clock: Clock,
        publish: Callable[[FlagSet], None],
        environment: str | None = None,
        allow_cycles: bool = False,
        actor: str = "system",
        namespace: str = "",
        on_reload_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.prefix = f"{namespace}flags/"
        self.def_prefix = f"{namespace}flags/def/"
        self.groups_key = f"{namespace}flags/groups"
        self.stats_prefix = f"{namespace}flags/stats/"
        self.audit_stream = f"{namespace}{AUDIT_STREAM}"
        if isinstance(store, str):
            from cognitionos.storage import open_store

            store = open_store(store, clock=clock)
            self._owns_store = True
        elif callable(getattr(store, "require", None)):
            self._owns_store = False
        else:
            raise ConfigurationError(
                f"FlagEngine store must be a storage URL or a store from open_store(), "
                f"got {type(store).__name__} {store!r:.80}"
            )
        store.require("kv", "event_log", needed_by="FlagEngine")
        self.store = store
        self.clock = clock
        self.environment = environment
        self.allow_cycles = allow_cycles
        self.actor = actor
        self._publish = publish
        self._on_reload_error = on_reload_error
        self.last_error: Exception | None = None
        self._lock = threading.RLock()
        self._subscription: Any = None
        # (key, version) of stored flags whose ignored unknown fields were already logged
        self._noted: set[tuple[str, int]] = set()
        self.reload()
        if "change_feed" in {str(c) for c in store.capabilities}:
            self._subscription = store.subscribe(self.prefix, self._on_change)

    # -- reading -----------------------------------------------------------------------
    def _parse(self, key: str, version: int, data: bytes) -> tuple[Any, FlagDefinition | str]:
        """One stored flag: its raw JSON and its definition, or the reason it is invalid.

        Fields this release does not know are dropped (a newer release may have
        written them); anything else wrong makes this one flag invalid.
        """
        where = f"stored flag {key!r}"
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"{where}: not valid JSON ({exc})"
        context: dict[str, Any] = {_IGNORE_UNKNOWN_FIELDS: True}
        try:
            flag = FlagDefinition.model_validate(raw, context=context)
        except ValidationError as exc:
            return raw, str(validation_error(exc, where))
        if flag.key != key:
            return raw, f"{where}: its definition has key {flag.key!r}"
        ignored = context.get(_IGNORED_FIELDS)
        if ignored and (key, version) not in self._noted:
            log.warning(
                "%s (version %d): ignored fields unknown to this release: %s",
                where,
                version,
                ", ".join(sorted(set(ignored))),
            )
        if ignored:
            self._noted.add((key, version))
        return raw, flag

    def _read_groups(self) -> dict[str, list[Any]]:
        entry = self.store.get(self.groups_key)
        if entry is None:
            return {}
        try:
            groups = json.loads(entry.value)
        except (ValueError, UnicodeDecodeError) as exc:
            log.error("stored saved groups are not valid JSON (%s); using none", exc)
            return {}
        if not isinstance(groups, Mapping):
            log.error("stored saved groups are not a JSON object; using none")
            return {}
        bad = sorted(str(k) for k, v in groups.items() if not isinstance(v, list))
        if bad:
            log.error("stored saved groups %s are not lists; using them as empty", bad)
        return {str(k): (v if isinstance(v, list) else []) for k, v in groups.items()}

    def _read(self) -> _Stored:
        flags: list[FlagDefinition] = []
        invalid: dict[str, str] = {}
        versions: dict[str, int] = {}
        raws: dict[str, Any] = {}
        for entry in self.store.scan(self.def_prefix, limit=_MAX_SCAN):
            key = entry.key[len(self.def_prefix) :]
            raw, parsed = self._parse(key, entry.version, entry.value)
            versions[key] = entry.version
            raws[key] = raw
            if isinstance(parsed, str):
                invalid[key] = parsed
            else:
                flags.append(parsed)
        self._noted &= set(versions.items())  # forget versions no longer stored
        fs = FlagSet(flags=flags, saved_groups=self._read_groups(), invalid=invalid)
        return _Stored(fs, versions, raws)

    def reload(self) -> None:
        """Read every definition and swap the engine's snapshot."""
        with self._lock:
            self._publish(self._read().flags)

    def _on_change(self, change: Any) -> None:
        if str(change.key).startswith(self.stats_prefix):
            return
        try:
            self.reload()
            self.last_error = None
        except Exception as exc:  # keep serving the last good snapshot, and say so
            self.last_error = exc
            if self._on_reload_error is not None:
                self._on_reload_error(exc)

    # -- writing -----------------------------------------------------------------------
    def _check(self, candidate: FlagSet, keys: list[str]) -> None:
        """Raise for the flags being written (user input is strict); others may be invalid."""
        snap = compile_snapshot(
            candidate,
            environment=self.environment,
            allow_cycles=self.allow_cycles,
            isolate=True,
        )
        problems = [snap.invalid[k] for k in keys if k in snap.invalid]
        if problems:
            raise ConfigurationError("; ".join(problems))

    @staticmethod
    def _without(fs: FlagSet, key: str, **update: Any) -> FlagSet:
        return fs.model_copy(
            update={
                "flags": [f for f in fs.flags if f.key != key],
                "invalid": {k: v for k, v in fs.invalid.items() if k != key},
                **update,
            }
        )

    def set_flag(
        self, flag: FlagDefinition, *, actor: str | None = None, action: str = "set"
    ) -> None:
        """Validate, write with compare-and-set, audit, swap."""
        with self._lock:
            current = self._read()
            before_flag = current.get(flag.key)
            rest = self._without(current.flags, flag.key)
            candidate = rest.model_copy(update={"flags": [*rest.flags, flag]})
            self._check(candidate, [flag.key])
            payload = json.dumps(_dump(flag), sort_keys=True).encode()
            version = current.versions.get(flag.key, 0)
            if (
                self.store.compare_and_set(self.def_prefix + flag.key, payload, version=version)
                is None
            ):
                raise StorageError(f"flag {flag.key!r} was changed concurrently; retry")
            before = (
                before_flag.model_dump(mode="json")
                if before_flag is not None
                else current.raw.get(flag.key)
            )
            after = flag.model_dump(mode="json")
            self._audit(action, flag.key, before, after, actor)
            self._publish(candidate)

    def delete_flag(self, key: str, *, actor: str | None = None) -> bool:
        """Delete one flag, even an invalid one (refused while it is a prerequisite of another)."""
        with self._lock:
            current = self._read()
            target = current.get(key)
            if target is None and key not in current.flags.invalid:
                return False
            dependants = [
                f.key
                for f in current.flags.flags
                if f.key != key
                and (
                    any(p.flag == key for p in f.prerequisites)
                    or any(p.flag == key for r in f.rules for p in r.prerequisites)
                )
            ]
            if dependants:
                raise ConfigurationError(
                    f"flag {key!r} is a prerequisite of {', '.join(sorted(dependants))}"
                )
            self.store.delete(self.def_prefix + key)
            before = target.model_dump(mode="json") if target is not None else current.raw[key]
            self._audit("delete", key, before, None, actor)
            self._publish(self._without(current.flags, key))
            return True

    def toggle(self, key: str, enabled: bool, *, actor: str | None = None) -> None:
        """Flip the kill switch of one stored flag.

        Only ``enabled`` changes in the stored JSON: fields a newer release wrote
        survive, and a flag this release cannot evaluate can still be switched off
        for the releases that can.
        """
        with self._lock:
            current = self._read()
            if key not in current.versions:
                raise ConfigurationError(f"flag {key!r} not found")
            raw = current.raw.get(key)
            if not isinstance(raw, dict):
                raise ConfigurationError(
                    f"stored flag {key!r} is not a JSON object; replace it with set_flag"
                )
            updated = {**raw, "enabled": enabled}
            payload = json.dumps(updated, sort_keys=True).encode()
            version = current.versions[key]
            if self.store.compare_and_set(self.def_prefix + key, payload, version=version) is None:
                raise StorageError(f"flag {key!r} was changed concurrently; retry")
            target = current.get(key)
            if target is not None:
                before = target.model_dump(mode="json")
                after = target.model_copy(update={"enabled": enabled}).model_dump(mode="json")
            else:
                before, after = raw, updated
            self._audit("enable" if enabled else "disable", key, before, after, actor)
            self.reload()

    def set_saved_group(self, name: str, members: list[Any], *, actor: str | None = None) -> None:
        """Create or replace one saved group."""
        with self._lock:
            current = self._read()
            groups = dict(current.flags.saved_groups)
            before = groups.get(name)
            groups[name] = list(members)
            candidate = current.flags.model_copy(update={"saved_groups": groups})
            self.store.set(self.groups_key, json.dumps(groups, sort_keys=True).encode())
            self._audit("set-group", f"group:{name}", before, groups[name], actor)
            self._publish(candidate)

    def import_set(self, fs: FlagSet, *, actor: str | None = None) -> int:
        """Write every flag of ``fs`` (validated as a whole first); returns how many changed."""
        with self._lock:
            if fs.invalid:
                raise ConfigurationError(
                    "cannot import invalid flags: "
                    + "; ".join(f"{k}: {v}" for k, v in sorted(fs.invalid.items()))
                )
            current = self._read()
            merged = {f.key: f for f in current.flags.flags}
            merged.update({f.key: f for f in fs.flags})
            groups = {**current.flags.saved_groups, **fs.saved_groups}
            invalid = {k: v for k, v in current.flags.invalid.items() if k not in merged}
            candidate = FlagSet(flags=list(merged.values()), saved_groups=groups, invalid=invalid)
            self._check(candidate, [f.key for f in fs.flags])
            if fs.saved_groups:
                self.store.set(self.groups_key, json.dumps(groups, sort_keys=True).encode())
            changed = 0
            old = {f.key: f for f in current.flags.flags}
            for flag in fs.flags:
                if old.get(flag.key) == flag:
                    continue
                self.set_flag(flag, actor=actor, action="import")
                changed += 1
            self.reload()
            return changed

    def _audit(self, action: str, key: str, before: Any, after: Any, actor: str | None) -> None:
        event = {
            "action": action,
            "flag": key,
            "actor": actor or self.actor,
            "at_ns": self.clock.time_ns(),
            "before": before,
            "after": after,
            "diff": diff(before, after),
        }
        self.store.append(self.audit_stream, json.dumps(event, sort_keys=True).encode())

    # -- reporting ---------------------------------------------------------------------
    def _events(self) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            batch = self.store.read(self.audit_stream, after=after, limit=1000)
            if not batch:
                return
            for ev in batch:
                item = json.loads(ev.payload)
                item["seq"] = ev.seq
                yield item
            after = batch[-1].seq

    def audit(self, key: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` audit events (oldest first), optionally for one flag."""
        events = [e for e in self._events() if key is None or e["flag"] == key]
        return events[-limit:]

    def flush_stats(self, stats: Mapping[str, tuple[int, list[Any], int]]) -> None:
        """Merge in-process evaluation stats (last time, distinct values, count) into the store."""
        for key, (last_ns, values, count) in stats.items():
            entry = self.store.get(self.stats_prefix + key)
            old = json.loads(entry.value) if entry is not None else {}
            seen = list(old.get("values", []))
            for v in values:
                if v not in seen and len(seen) < 2:
                    seen.append(v)
            merged = {
                "last_ns": max(int(old.get("last_ns", 0)), last_ns),
                "values": seen,
                "count": int(old.get("count", 0)) + count,
            }
            self.store.set(self.stats_prefix + key, json.dumps(merged, sort_keys=True).encode())

    def stale(self, *, unchanged_days: float, unevaluated_days: float) -> list[dict[str, Any]]:
        """Flags unchanged or unevaluated for N days, or only ever answering one value."""
        now = self.clock.time_ns()
        last_change: dict[str, int] = {}
        for e in self._events():
            last_change[e["flag"]] = max(last_change.get(e["flag"], 0), int(e["at_ns"]))
        current = self._read().flags
        report = []
        for flag in current.flags:
            reasons = []
            changed = last_change.get(flag.key)
            if changed is None or now - changed >= unchanged_days * _NS_PER_DAY:
                reasons.append("unchanged")
            entry = self.store.get(self.stats_prefix + flag.key)
            stats = json.loads(entry.value) if entry is not None else None
            last_eval = int(stats["last_ns"]) if stats else None
            if last_eval is None or now - last_eval >= unevaluated_days * _NS_PER_DAY:
                reasons.append("unevaluated")
            if stats and stats.get("count", 0) > 0 and len(stats.get("values", [])) == 1:
                reasons.append("single-value")
            if reasons:
                report.append(
                    {
                        "flag": flag.key,
                        "reasons": reasons,
                        "last_changed_ns": changed,
                        "last_evaluated_ns": last_eval,
                        "values": stats.get("values") if stats else [],
                    }
                )
        return report

    def close(self) -> None:
        """Stop following the change feed (and close a store opened from a URL)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._owns_store:
            self.store.close()
