"""Flag definitions kept in a store, hot-swapped from its change feed, with an audit trail.

Layout inside the store (all keys under ``<namespace>flags/``; the namespace is
empty by default and lets several applications or environments share one store):

====================================  ===================================================
``<ns>flags/def/<key>``               one :class:`FlagDefinition` as JSON (versioned)
``<ns>flags/groups``                  saved groups as JSON (key-value)
``<ns>flags/stats/<key>``             last evaluation time and distinct values seen
stream ``<ns>flags.audit``            one event per change: who, when, action, diff
====================================  ===================================================

Every write validates the whole resulting flag set first (unknown operators,
bad regexes and prerequisite cycles are rejected before anything is stored),
writes with compare-and-set, appends the audit event, and swaps the local
snapshot at once; other processes follow through the change feed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.flags._core import compile_snapshot
from cognitionos.flags._growthbook import validation_error
from cognitionos.flags.models import FlagDefinition, FlagSet

if TYPE_CHECKING:
    from cognitionos.flags.engine import FlagEngine

__all__ = ["AUDIT_STREAM", "StoreSync", "diff"]

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


class StoreSync:
    """Keeps a :class:`FlagEngine`'s snapshot equal to the definitions in a store."""

    def __init__(
        self, engine: FlagEngine, store: Any, *, actor: str = "system", namespace: str = ""
    ) -> None:
        self.prefix = f"{namespace}flags/"
        self.def_prefix = f"{namespace}flags/def/"
        self.groups_key = f"{namespace}flags/groups"
        self.stats_prefix = f"{namespace}flags/stats/"
        self.audit_stream = f"{namespace}{AUDIT_STREAM}"
        if isinstance(store, str):
            from cognitionos.storage import open_store

            store = open_store(store, clock=engine._clock)
            self._owns_store = True
        else:
            self._owns_store = False
        store.require("kv", "event_log", needed_by="FlagEngine")
        self.store = store
        self.engine = engine
        self.actor = actor
        self.last_error: Exception | None = None
        self._lock = threading.RLock()
        self._subscription: Any = None
        self.reload()
        if "change_feed" in {str(c) for c in store.capabilities}:
            self._subscription = store.subscribe(self.prefix, self._on_change)

    # -- reading -----------------------------------------------------------------------
    def _read_set(self) -> tuple[FlagSet, dict[str, int]]:
        flags = []
        versions: dict[str, int] = {}
        for entry in self.store.scan(self.def_prefix, limit=_MAX_SCAN):
            raw = json.loads(entry.value)
            try:
                flag = FlagDefinition.model_validate(raw)
            except ValidationError as exc:
                raise validation_error(
                    exc, f"stored flag {entry.key[len(self.def_prefix) :]!r}"
                ) from None
            flags.append(flag)
            versions[flag.key] = entry.version
        groups_entry = self.store.get(self.groups_key)
        groups = json.loads(groups_entry.value) if groups_entry is not None else {}
        return FlagSet(flags=flags, saved_groups=groups), versions

    def reload(self) -> None:
        """Read every definition and swap the engine's snapshot."""
        with self._lock:
            fs, _ = self._read_set()
            self.engine.replace(fs)

    def _on_change(self, change: Any) -> None:
        if str(change.key).startswith(self.stats_prefix):
            return
        try:
            self.reload()
            self.last_error = None
        except Exception as exc:  # keep serving the last good snapshot
            self.last_error = exc

    # -- writing -----------------------------------------------------------------------
    def _validate(self, fs: FlagSet) -> None:
        compile_snapshot(fs, environment=self.engine._environment)

    def set_flag(
        self, flag: FlagDefinition, *, actor: str | None = None, action: str = "set"
    ) -> None:
        """Validate, write with compare-and-set, audit, swap."""
        with self._lock:
            current, versions = self._read_set()
            before_flag = next((f for f in current.flags if f.key == flag.key), None)
            others = [f for f in current.flags if f.key != flag.key]
            candidate = FlagSet(flags=[*others, flag], saved_groups=current.saved_groups)
            self._validate(candidate)
            payload = json.dumps(_dump(flag), sort_keys=True).encode()
            version = versions.get(flag.key, 0)
            if (
                self.store.compare_and_set(self.def_prefix + flag.key, payload, version=version)
                is None
            ):
                raise StorageError(f"flag {flag.key!r} was changed concurrently; retry")
            before = before_flag.model_dump(mode="json") if before_flag is not None else None
            after = flag.model_dump(mode="json")
            self._audit(action, flag.key, before, after, actor)
            self.engine.replace(candidate)

    def delete_flag(self, key: str, *, actor: str | None = None) -> bool:
        """Delete one flag (refused while another flag lists it as a prerequisite)."""
        with self._lock:
            current, _ = self._read_set()
            target = next((f for f in current.flags if f.key == key), None)
            if target is None:
                return False
            dependants = [
                f.key
                for f in current.flags
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
            self._audit("delete", key, target.model_dump(mode="json"), None, actor)
            self.engine.replace(
                FlagSet(
                    flags=[f for f in current.flags if f.key != key],
                    saved_groups=current.saved_groups,
                )
            )
            return True

    def toggle(self, key: str, enabled: bool, *, actor: str | None = None) -> None:
        """Flip the kill switch of one stored flag."""
        with self._lock:
            current, _ = self._read_set()
            target = next((f for f in current.flags if f.key == key), None)
            if target is None:
                raise ConfigurationError(f"flag {key!r} not found")
            self.set_flag(
                target.model_copy(update={"enabled": enabled}),
                actor=actor,
                action="enable" if enabled else "disable",
            )

    def set_saved_group(self, name: str, members: list[Any], *, actor: str | None = None) -> None:
        """Create or replace one saved group."""
        with self._lock:
            current, _ = self._read_set()
            groups = dict(current.saved_groups)
            before = groups.get(name)
            groups[name] = list(members)
            candidate = FlagSet(flags=current.flags, saved_groups=groups)
            self._validate(candidate)
            self.store.set(self.groups_key, json.dumps(groups, sort_keys=True).encode())
            self._audit("set-group", f"group:{name}", before, groups[name], actor)
            self.engine.replace(candidate)

    def import_set(self, fs: FlagSet, *, actor: str | None = None) -> int:
        """Write every flag of ``fs`` (validated as a whole first); returns how many changed."""
        with self._lock:
            current, _ = self._read_set()
            merged = {f.key: f for f in current.flags}
            merged.update({f.key: f for f in fs.flags})
            groups = {**current.saved_groups, **fs.saved_groups}
            self._validate(FlagSet(flags=list(merged.values()), saved_groups=groups))
            if fs.saved_groups:
                self.store.set(self.groups_key, json.dumps(groups, sort_keys=True).encode())
            changed = 0
            old = {f.key: f for f in current.flags}
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
            "at_ns": self.engine._clock.time_ns(),
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
        now = self.engine._clock.time_ns()
        last_change: dict[str, int] = {}
        for e in self._events():
            last_change[e["flag"]] = max(last_change.get(e["flag"], 0), int(e["at_ns"]))
        current, _ = self._read_set()
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
