"""Sans-I/O evaluation: definitions compiled into an immutable snapshot, evaluated per call.

:func:`compile_snapshot` validates and compiles a :class:`FlagSet` once:
conditions become closures, bucket ranges and result objects are computed
ahead, prerequisites are resolved to keys. :meth:`Snapshot.evaluate` then
does no parsing and no I/O; it reads only its arguments (attributes, the
current time, per-call options), so a snapshot can be shared by any number
of threads and swapped atomically by assigning a new one.
"""

from __future__ import annotations

import random as _random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from cognitionos.bucketing import (
    bucket_ranges,
    choose_variation,
    in_namespace,
    query_string_override,
)
from cognitionos.errors import ConfigurationError
from cognitionos.flags._conditions import Predicate, compile_condition, compile_targeting
from cognitionos.flags._flagd import UNNAMEABLE, variant_of
from cognitionos.flags._js import js_string, js_truthy
from cognitionos.flags.models import (
    ErrorCode,
    Evaluation,
    EvaluationOptions,
    ExperimentResult,
    FlagDefinition,
    FlagSet,
    Prerequisite,
    Reason,
    Rule,
    VariantSplit,
)
from cognitionos.hashing import fnv1a32, growthbook_hash, murmur3_32

__all__ = ["Snapshot", "compile_snapshot", "find_prerequisite_cycle"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_Filters = tuple[tuple[str, str, int, tuple[tuple[float, float], ...]], ...]
_DEFAULT_OPTIONS = EvaluationOptions()
_NOT_IN = -1


def _ts(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _hash_identity(
    attrs: Mapping[str, Any], attribute: str, fallback: str | None
) -> tuple[str, Any]:
    """GrowthBook ``getHashAttribute``: the attribute used and its raw value ("" when unusable)."""
    value = attrs.get(attribute)
    if js_truthy(value):
        return attribute, value
    if fallback:
        fb = attrs.get(fallback)
        if js_truthy(fb):
            return fallback, fb
    return attribute, ""


def _hash_text(value: Any) -> str:
    return value if type(value) is str else js_string(value)


class _Bucketer:
    """How a rule turns a user into a number in [0, 1)."""

    __slots__ = ("chain", "fallback", "seed", "seed_state", "unleash", "version")

    def __init__(
        self, attribute: str | Sequence[str], fallback: str | None, version: Any, seed: str
    ) -> None:
        self.chain: tuple[str, ...] = (
            (attribute,) if isinstance(attribute, str) else tuple(attribute)
        )
        self.fallback = fallback
        self.unleash = version == "unleash"
        self.version = version
        self.seed = seed
        # hash version 2 hashes seed + value: the seed's FNV state is computed once
        self.seed_state = fnv1a32(seed)

    def identity(self, attrs: Mapping[str, Any], with_fallback: bool) -> tuple[str, Any]:
        if len(self.chain) == 1 and self.chain[0] != "random":
            return _hash_identity(attrs, self.chain[0], self.fallback if with_fallback else None)
        for name in self.chain:
            if name == "random":
                return name, "random"
            value = attrs.get(name)
            if value is not None and value != "":
                return name, value
        return self.chain[0], ""

    def bucket(self, value: Any, rng: _random.Random, normalizer: int = 100) -> float | None:
        """A float in [0, 1) for ``value``; Unleash hashing yields multiples of 1/normalizer."""
        if self.unleash:
            if value == "random":
                return rng.randrange(normalizer) / normalizer
            h = murmur3_32(f"{self.seed}:{_hash_text(value)}", 0)
            return (h % normalizer) / normalizer
        if self.version == 2:
            text = value if type(value) is str else js_string(value)
            return (fnv1a32(str(fnv1a32(text, self.seed_state))) % 10000) / 10000
        if type(self.version) is not int:
            return None
        return growthbook_hash(self.seed, _hash_text(value), self.version)


class _Split:
    """Variant selection for a fixed value (Unleash variants), precomputed per variant."""

    __slots__ = ("bucketer", "evaluations", "murmur_seed", "overrides", "thresholds", "total")

    def __init__(
        self, split: VariantSplit, flag_key: str, base: Evaluation, strict: bool = True
    ) -> None:
        self.bucketer = _Bucketer(
            split.stickiness, None, split.hash_version, split.seed or flag_key
        )
        self.murmur_seed = split.murmur_seed
        weights = [v.weight if v.weight is not None else 1.0 for v in split.variations]
        self.total = sum(weights)
        cumulative = 0.0
        thresholds = []
        for w in weights:
            cumulative += w
            thresholds.append(cumulative)
        self.thresholds = tuple(thresholds)
        evs = []
        for i, v in enumerate(split.variations):
            meta: Mapping[str, Any] = (
                MappingProxyType({"payload": v.payload}) if v.payload is not None else _EMPTY
            )
            evs.append(
                Evaluation(
                    flag_key=base.flag_key,
                    value=base.value,
                    reason=Reason.SPLIT,
                    variant=v.key if v.key is not None else str(i),
                    rule_id=base.rule_id,
                    metadata=meta,
                )
            )
        self.evaluations = tuple(evs)
        self.overrides = tuple(
            (
                compile_condition(
                    v.condition, strict=strict, where=f"flag {flag_key!r} variants[{i}].condition"
                ),
                evs[i],
            )
            for i, v in enumerate(split.variations)
            if v.condition is not None
        )

    def choose(self, attrs: Mapping[str, Any], rng: _random.Random) -> Evaluation | None:
        for pred, ev in self.overrides:
            if pred(attrs):
                return ev
        if self.total <= 0:
            return None
        b = self.bucketer
        _, value = b.identity(attrs, False)
        if value == "" or value is None:
            value = "random"
        if b.unleash:
            total = round(self.total)
            if value == "random":
                target = rng.randrange(total) + 1
            else:
                target = murmur3_32(f"{b.seed}:{_hash_text(value)}", self.murmur_seed) % total + 1
            for i, t in enumerate(self.thresholds):
                if target <= t:
                    return self.evaluations[i]
            return self.evaluations[-1]
        n = b.bucket(value, rng)
        if n is None:
            return None
        target_f = n * self.total
        for i, t in enumerate(self.thresholds):
            if target_f < t:
                return self.evaluations[i]
        return self.evaluations[-1]


class _Parent:
    __slots__ = ("flag", "gate", "pred")

    def __init__(self, p: Prerequisite, pred: Predicate) -> None:
        self.flag = p.flag
        self.gate = p.gate
        self.pred = pred


class _Schedule:
    __slots__ = ("end", "ramp", "start")

    def __init__(self, rule: Rule) -> None:
        self.start = _ts(rule.start_at)
        self.end = _ts(rule.end_at)
        self.ramp = (
            (
                _ts(rule.ramp.start),
                _ts(rule.ramp.end),
                rule.ramp.from_coverage,
                rule.ramp.to_coverage,
            )
            if rule.ramp is not None
            else None
        )

    def active(self, now: float) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def coverage(self, now: float, base: float | None) -> float | None:
        if self.ramp is None:
            return base
        start, end, lo, hi = self.ramp
        assert start is not None and end is not None
        if now <= start:
            return lo
        if now >= end:
            return hi
        return lo + (hi - lo) * (now - start) / (end - start)


class _Bandit:
    __slots__ = ("leaves", "version")

    def __init__(
        self, version: int | None, leaves: tuple[tuple[int, Predicate, tuple[float, ...]], ...]
    ):
        self.version = version
        self.leaves = leaves


class _Experiment:
    """A split rule (or an inline experiment) compiled for :func:`_run`."""

    __slots__ = (
        "active",
        "bandit_ref",
        "bucket_version",
        "bucketer",
        "condition",
        "coverage",
        "disable_sticky",
        "filters",
        "force",
        "key",
        "keys",
        "min_bucket_version",
        "n",
        "names",
        "namespace",
        "parents",
        "passthrough",
        "ranges",
        "values",
        "weights",
    )
    active: bool
    bandit_ref: str | None
    bucket_version: int
    bucketer: _Bucketer
    condition: Predicate | None
    coverage: float
    disable_sticky: bool
    filters: _Filters
    force: int | None
    key: str
    keys: tuple[str, ...]
    min_bucket_version: int
    n: int
    names: tuple[str | None, ...]
    namespace: tuple[str, float, float] | None
    parents: tuple[_Parent, ...]
    passthrough: tuple[bool, ...]
    ranges: tuple[tuple[float, float], ...]
    values: tuple[Any, ...]
    weights: list[float] | None

    def __init__(self) -> None:
        self.active = True
        self.force = None
        self.bandit_ref = None


class _CompiledRule:
    __slots__ = (
        "bucketer",
        "condition",
        "coverage",
        "evaluation",
        "experiment",
        "filters",
        "noop",
        "parents",
        "range",
        "schedule",
        "split",
    )
    bucketer: _Bucketer
    condition: Predicate | None
    coverage: float | None
    evaluation: Evaluation
    experiment: _Experiment | None
    filters: _Filters
    noop: bool
    parents: tuple[_Parent, ...]
    range: tuple[float, float] | None
    schedule: _Schedule | None
    split: _Split | None


class _Targeting:
    """flagd targeting run once per evaluation: its result names the variant to serve."""

    __slots__ = ("by_variant", "run")

    def __init__(self, run: Any, by_variant: dict[str, Evaluation]) -> None:
        self.run = run
        self.by_variant = by_variant


class _CompiledFlag:
    __slots__ = ("default_eval", "enabled", "gates", "key", "rules", "split", "targeting")
    default_eval: Evaluation
    enabled: bool
    gates: tuple[_Parent, ...]
    key: str
    rules: tuple[_CompiledRule, ...]
    split: _Split | None
    targeting: _Targeting | None


def _filtered_out(filters: _Filters, attrs: Mapping[str, Any]) -> bool:
    for attribute, seed, version, ranges in filters:
        _, value = _hash_identity(attrs, attribute, None)
        if value == "":
            return True
        n = growthbook_hash(seed, _hash_text(value), version)
        if n is None:
            return True
        if not any(lo <= n < hi for lo, hi in ranges):
            return True
    return False


class _Call:
    """State of one top-level evaluation (prerequisite recursion shares it)."""

    __slots__ = ("attrs", "now", "options", "rng")

    def __init__(
        self, attrs: Mapping[str, Any], now: float, options: EvaluationOptions, rng: _random.Random
    ) -> None:
        self.attrs = attrs
        self.now = now
        self.options = options
        self.rng = rng


class Snapshot:
    """Immutable compiled flags; :meth:`evaluate` is the hot path."""

    __slots__ = ("_bandits", "_flags", "_invalid", "definitions", "uses_time", "version")

    def __init__(
        self,
        flags: dict[str, _CompiledFlag],
        definitions: FlagSet,
        bandits: dict[str, _Bandit],
        uses_time: bool,
        version: int,
    ) -> None:
        self._flags = flags
        self._bandits = bandits
        # flags that failed to load live apart, so the hot path pays nothing for them
        self._invalid = MappingProxyType(dict(definitions.invalid))
        self.definitions = definitions
        self.uses_time = uses_time
        self.version = version

    @property
    def keys(self) -> tuple[str, ...]:
        """Flag keys in definition order (flags that failed to load last)."""
        return (*self._flags, *self._invalid)

    @property
    def invalid(self) -> Mapping[str, str]:
        """Flags that failed to load, with the reason; they evaluate to PARSE_ERROR."""
        return self._invalid

    def __contains__(self, key: object) -> bool:
        return key in self._flags or key in self._invalid

    def __len__(self) -> int:
        return len(self._flags) + len(self._invalid)

    # -- flags --------------------------------------------------------------------------
    def static(self, key: str) -> Evaluation | None:
        """The answer of an enabled flag without rules (it ignores attributes), else None."""
        flag = self._flags.get(key)
        if flag is None or flag.rules or flag.gates or not flag.enabled:
            return None
        return flag.default_eval

    def evaluate(
        self,
        key: str,
        attrs: Mapping[str, Any],
        default: Any,
        now: float,
        options: EvaluationOptions | None,
        rng: _random.Random,
    ) -> Evaluation:
        """Evaluate flag ``key``; exceptions from odd attribute values reach the facade."""
        call = _Call(attrs, now, options or _DEFAULT_OPTIONS, rng)
        return self._eval(key, call, default, ())

    def _eval(self, key: str, call: _Call, default: Any, stack: tuple[str, ...]) -> Evaluation:
        flag = self._flags.get(key)
        if flag is None:
            problem = self._invalid.get(key)
            if problem is not None:
                return Evaluation(
                    flag_key=key,
                    value=default,
                    reason=Reason.ERROR,
                    error_code=ErrorCode.PARSE_ERROR,
                    error_message=problem,
                )
            return Evaluation(
                flag_key=key,
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"flag {key!r} not found",
            )
        if key in stack:
            return _cyclic(key, default)
        if not flag.enabled:
            return Evaluation(flag_key=key, value=default, reason=Reason.DISABLED)
        attrs = call.attrs
        if flag.gates:
            inner = (*stack, key)
            for parent in flag.gates:
                ok = self._parent_ok(parent, call, inner)
                if ok is None:
                    return _cyclic(key, default)
                if not ok:
                    return Evaluation(
                        flag_key=key, value=default, reason=Reason.PREREQUISITE_FAILED
                    )
        if flag.targeting is not None:
            return self._target(flag, flag.targeting, attrs, default)
        for rule in flag.rules:
            if rule.parents:
                skip = False
                inner = (*stack, key)
                for parent in rule.parents:
                    ok = self._parent_ok(parent, call, inner)
                    if ok is None:
                        return _cyclic(key, default)
                    if not ok:
                        if parent.gate:
                            return Evaluation(
                                flag_key=key, value=default, reason=Reason.PREREQUISITE_FAILED
                            )
                        skip = True
                        break
                if skip:
                    continue
            if rule.filters and _filtered_out(rule.filters, attrs):
                continue
            schedule = rule.schedule
            if schedule is not None and not schedule.active(call.now):
                continue
            exp = rule.experiment
            if exp is None:
                if rule.noop:
                    continue
                cond = rule.condition
                if cond is not None and not cond(attrs):
                    continue
                coverage = rule.coverage
                if schedule is not None:
                    coverage = schedule.coverage(call.now, coverage)
                if (rule.range is not None or coverage is not None) and not self._in_rollout(
                    rule, coverage, attrs, call
                ):
                    continue
                if rule.split is not None:
                    chosen = rule.split.choose(attrs, call.rng)
                    if chosen is not None:
                        return chosen
                elif flag.split is not None:
                    chosen = flag.split.choose(attrs, call.rng)
                    if chosen is not None:
                        return Evaluation(
                            flag_key=key,
                            value=rule.evaluation.value,
                            reason=Reason.SPLIT,
                            variant=chosen.variant,
                            rule_id=rule.evaluation.rule_id,
                            metadata=chosen.metadata,
                        )
                return rule.evaluation
            coverage_override = None
            if schedule is not None and schedule.ramp is not None:
                coverage_override = schedule.coverage(call.now, None)
            res = self._run(exp, call, key, (*stack, key), coverage_override)
            if res is None:
                return _cyclic(key, default)
            if res.in_experiment and not res.passthrough:
                return Evaluation(
                    flag_key=key,
                    value=res.value,
                    reason=Reason.SPLIT,
                    variant=res.key,
                    rule_id=rule.evaluation.rule_id,
                    experiment=res,
                )
        return _fall_back(flag, default)

    def _target(
        self, flag: _CompiledFlag, targeting: _Targeting, attrs: Mapping[str, Any], default: Any
    ) -> Evaluation:
        name = variant_of(targeting.run(attrs))
        if name is None:
            return _fall_back(flag, default)
        ev = targeting.by_variant.get(name) if name is not UNNAMEABLE else None
        if ev is not None:
            return ev
        # flagd: a result that names no variant is an evaluation error, not the default
        shown = "a list or an object" if name is UNNAMEABLE else repr(name)
        return Evaluation(
            flag_key=flag.key,
            value=default,
            reason=Reason.ERROR,
            error_code=ErrorCode.GENERAL,
            error_message=f"flag {flag.key!r}: targeting chose {shown}, not one of its variants",
        )

    def _parent_ok(self, parent: _Parent, call: _Call, stack: tuple[str, ...]) -> bool | None:
        """Whether the prerequisite holds; ``None`` signals a cycle."""
        res = self._eval(parent.flag, call, None, stack)
        if res.error_code is ErrorCode.CYCLIC_PREREQUISITE:
            return None
        exists = res.error_code is not ErrorCode.FLAG_NOT_FOUND
        return parent.pred({"value": res.value, "variant": res.variant, "exists": exists})

    def _in_rollout(
        self, rule: _CompiledRule, coverage: float | None, attrs: Mapping[str, Any], call: _Call
    ) -> bool:
        rng = rule.range
        if rng is None and coverage == 0:
            return False
        b = rule.bucketer
        if b.fallback is None and len(b.chain) == 1 and b.chain[0] != "random":
            value = attrs.get(b.chain[0])
            if type(value) is not str and not js_truthy(value):
                return False
        else:
            _, value = b.identity(attrs, call.options.sticky_buckets is not None)
        if value == "" or value is None:
            return False
        n = b.bucket(value, call.rng)
        if n is None:
            return False
        if rng is not None:
            return rng[0] <= n < rng[1]
        assert coverage is not None
        if b.unleash:
            # Unleash: normalised value (1..100) <= percentage
            return n < coverage - 1e-12
        return n <= coverage

    # -- experiments ------------------------------------------------------------------------
    def _run(
        self,
        exp: _Experiment,
        call: _Call,
        feature_key: str | None,
        stack: tuple[str, ...],
        coverage_override: float | None = None,
    ) -> ExperimentResult | None:
        """GrowthBook's ``run``; ``None`` when a prerequisite cycle was found."""
        opts = call.options
        attrs = call.attrs
        n_var = exp.n
        bandit = self._bandits.get(exp.bandit_ref) if exp.bandit_ref is not None else None
        if n_var < 2 or not opts.experiments_enabled:
            return self._result(exp, _NOT_IN, False, feature_key, call)
        if opts.url:
            forced = query_string_override(exp.key, opts.url, n_var)
            if forced is not None:
                return self._result(exp, forced, False, feature_key, call)
        forced_map = opts.forced_variations
        if forced_map and exp.key in forced_map:
            return self._result(exp, forced_map[exp.key], False, feature_key, call)
        if not exp.active:
            return self._result(exp, _NOT_IN, False, feature_key, call)
        sticky = opts.sticky_buckets if not exp.disable_sticky else None
        b = exp.bucketer
        _, hash_value = b.identity(attrs, sticky is not None)
        if not js_truthy(hash_value):
            return self._result(exp, _NOT_IN, False, feature_key, call)
        assigned = _NOT_IN
        found_sticky = False
        blocked = False
        if sticky is not None:
            assigned, blocked = self._sticky_variation(exp, attrs, sticky)
            found_sticky = assigned >= 0
        if not found_sticky:
            if exp.filters:
                if _filtered_out(exp.filters, attrs):
                    return self._result(exp, _NOT_IN, False, feature_key, call)
            elif exp.namespace is not None and not in_namespace(
                _hash_text(hash_value), exp.namespace
            ):
                return self._result(exp, _NOT_IN, False, feature_key, call)
            if exp.condition is not None and not exp.condition(attrs):
                return self._result(exp, _NOT_IN, False, feature_key, call)
            for parent in exp.parents:
                ok = self._parent_ok(parent, call, stack)
                if ok is None:
                    return None
                if not ok:
                    return self._result(exp, _NOT_IN, False, feature_key, call)
        n = b.bucket(hash_value, call.rng)
        if n is None:
            return self._result(exp, _NOT_IN, False, feature_key, call)
        leaf: tuple[int, tuple[float, ...]] | None = None
        if not found_sticky:
            ranges = exp.ranges
            if bandit is not None or exp.bandit_ref is not None:
                leaf = self._bandit_leaf(exp, bandit, attrs)
                weights: Sequence[float] | None = leaf[1] if leaf is not None else exp.weights
                coverage = exp.coverage if coverage_override is None else coverage_override
                ranges = tuple(bucket_ranges(n_var, coverage, weights))
            elif coverage_override is not None:
                ranges = tuple(bucket_ranges(n_var, coverage_override, exp.weights))
            assigned = choose_variation(n, ranges)
        if blocked:
            return self._result(exp, _NOT_IN, False, feature_key, call, sticky_used=True)
        if assigned < 0:
            return self._result(exp, _NOT_IN, False, feature_key, call)
        if exp.force is not None:
            return self._result(exp, exp.force, False, feature_key, call)
        if opts.qa_mode:
            return self._result(exp, _NOT_IN, False, feature_key, call)
        res = self._result(
            exp,
            assigned,
            True,
            feature_key,
            call,
            bucket=n,
            sticky_used=found_sticky,
            leaf=leaf,
            bandit=bandit,
        )
        if sticky is not None:
            _save_sticky(sticky, exp, res)
        return res

    def _bandit_leaf(
        self, exp: _Experiment, bandit: _Bandit | None, attrs: Mapping[str, Any]
    ) -> tuple[int, tuple[float, ...]] | None:
        if bandit is None:
            return None
        for leaf_id, pred, weights in bandit.leaves:
            if pred(attrs):
                return leaf_id, weights
        return -1, tuple(exp.weights) if exp.weights is not None else tuple(
            1 / exp.n for _ in range(exp.n)
        )

    def _sticky_variation(
        self, exp: _Experiment, attrs: Mapping[str, Any], sticky: Any
    ) -> tuple[int, bool]:
        b = exp.bucketer
        primary = b.chain[0]
        assignments: dict[str, str] = {}
        if b.fallback:
            fb = attrs.get(b.fallback)
            if js_truthy(fb):
                got = sticky.get_assignments(b.fallback, _hash_text(fb))
                if got:
                    assignments.update(got)
        pv = attrs.get(primary)
        if js_truthy(pv):
            got = sticky.get_assignments(primary, _hash_text(pv))
            if got:
                assignments.update(got)
        if exp.min_bucket_version > 0:
            for i in range(exp.min_bucket_version):
                if f"{exp.key}__{i}" in assignments:
                    return _NOT_IN, True
        chosen = assignments.get(f"{exp.key}__{exp.bucket_version}")
        if chosen is None:
            return _NOT_IN, False
        try:
            return exp.keys.index(chosen), False
        except ValueError:
            return _NOT_IN, False

    def _result(
        self,
        exp: _Experiment,
        index: int,
        hash_used: bool,
        feature_key: str | None,
        call: _Call,
        *,
        bucket: float | None = None,
        sticky_used: bool = False,
        leaf: tuple[int, tuple[float, ...]] | None = None,
        bandit: _Bandit | None = None,
    ) -> ExperimentResult:
        in_exp = True
        if index < 0 or index >= exp.n:
            index = 0
            in_exp = False
        attr, value = exp.bucketer.identity(
            call.attrs, call.options.sticky_buckets is not None and not exp.disable_sticky
        )
        return ExperimentResult(
            experiment_key=exp.key,
            feature_key=feature_key,
            variation_id=index,
            key=exp.keys[index] if exp.n else "0",
            value=exp.values[index] if exp.n else None,
            in_experiment=in_exp,
            hash_used=hash_used,
            hash_attribute=attr,
            hash_value=value,
            bucket=bucket,
            name=exp.names[index] if exp.n else None,
            passthrough=exp.passthrough[index] if exp.n else False,
            sticky_bucket_used=sticky_used,
            leaf_id=leaf[0] if leaf is not None else None,
            variation_weights=leaf[1] if leaf is not None else None,
            bandit_version=bandit.version if leaf is not None and bandit is not None else None,
        )

    # -- inline experiments ---------------------------------------------------------------
    def run_experiment(
        self,
        experiment: Rule,
        attrs: Mapping[str, Any],
        now: float,
        options: EvaluationOptions | None,
        rng: _random.Random,
        *,
        active: bool = True,
        force: int | None = None,
        saved_groups: Mapping[str, Any] | None = None,
    ) -> ExperimentResult:
        """Run one experiment that is not attached to a flag (GrowthBook's ``run``)."""
        groups = saved_groups if saved_groups is not None else self.definitions.saved_groups
        exp = _compile_experiment(experiment, experiment.experiment_key or "", groups, "experiment")
        exp.active = active
        exp.force = force
        call = _Call(attrs, now, options or _DEFAULT_OPTIONS, rng)
        res = self._run(exp, call, None, ())
        if res is None:
            return self._result(exp, _NOT_IN, False, None, call)
        return res


def _save_sticky(sticky: Any, exp: _Experiment, res: ExperimentResult) -> None:
    name = res.hash_attribute
    value = _hash_text(res.hash_value)
    existing = dict(sticky.get_assignments(name, value) or {})
    slot = f"{exp.key}__{exp.bucket_version}"
    if existing.get(slot) == res.key:
        return
    existing[slot] = res.key
    sticky.save_assignments(name, value, existing)


def _fall_back(flag: _CompiledFlag, default: Any) -> Evaluation:
    """No rule applied: the flag's default, or the caller's when the flag has none."""
    if flag.default_eval.value is None and default is not None:
        return Evaluation(flag_key=flag.key, value=default, reason=flag.default_eval.reason)
    return flag.default_eval


def _cyclic(key: str, default: Any) -> Evaluation:
    return Evaluation(
        flag_key=key,
        value=default,
        reason=Reason.ERROR,
        error_code=ErrorCode.CYCLIC_PREREQUISITE,
        error_message=f"flag {key!r}: prerequisites form a cycle",
    )


# --- compilation -----------------------------------------------------------------------------


def _compile_parents(
    parents: Sequence[Prerequisite], groups: Mapping[str, Any], where: str, strict: bool = True
) -> tuple[_Parent, ...]:
    return tuple(
        _Parent(
            p,
            compile_condition(
                p.condition, saved_groups=groups, strict=strict, where=f"{where}[{i}].condition"
            ),
        )
        for i, p in enumerate(parents)
    )


def _compile_filters(rule: Rule) -> _Filters:
    return tuple(
        (f.attribute, f.seed, f.hash_version, tuple((float(a), float(b)) for a, b in f.ranges))
        for f in rule.filters
    )


def _compile_experiment(
    rule: Rule, default_key: str, groups: Mapping[str, Any], where: str, strict: bool = True
) -> _Experiment:
    assert rule.variations is not None
    exp = _Experiment()
    key = rule.experiment_key or default_key
    exp.key = key
    variations = rule.variations
    exp.n = len(variations)
    exp.values = tuple(v.value for v in variations)
    exp.keys = tuple(v.key if v.key else str(i) for i, v in enumerate(variations))
    exp.names = tuple(v.name for v in variations)
    exp.passthrough = tuple(v.passthrough for v in variations)
    weights = [v.weight for v in variations]
    exp.weights = [float(w) for w in weights] if all(w is not None for w in weights) else None  # type: ignore[arg-type]
    exp.coverage = 1.0 if rule.coverage is None else float(rule.coverage)
    if rule.ranges is not None:
        exp.ranges = tuple((float(a), float(b)) for a, b in rule.ranges)
    else:
        exp.ranges = tuple(bucket_ranges(exp.n, exp.coverage, exp.weights))
    exp.bucketer = _Bucketer(
        rule.hash_attribute, rule.fallback_attribute, rule.hash_version, rule.seed or key
    )
    exp.filters = _compile_filters(rule)
    exp.namespace = (
        (rule.namespace.name, rule.namespace.start, rule.namespace.end) if rule.namespace else None
    )
    exp.condition = (
        compile_condition(
            rule.condition, saved_groups=groups, strict=strict, where=f"{where}.condition"
        )
        if rule.condition
        else None
    )
    exp.parents = _compile_parents(rule.prerequisites, groups, f"{where}.prerequisites", strict)
    exp.bucket_version = rule.bucket_version
    exp.min_bucket_version = rule.min_bucket_version
    exp.disable_sticky = rule.disable_sticky_bucketing
    exp.bandit_ref = rule.contextual_bandit
    return exp


def _compile_rule(
    flag: FlagDefinition, index: int, rule: Rule, groups: Mapping[str, Any], strict: bool
) -> _CompiledRule:
    where = f"flag {flag.key!r} rules[{index}]"
    cr = _CompiledRule()
    cr.parents = _compile_parents(rule.prerequisites, groups, f"{where}.prerequisites", strict)
    cr.filters = _compile_filters(rule)
    cr.schedule = _Schedule(rule) if (rule.start_at or rule.end_at or rule.ramp) else None
    cr.evaluation = Evaluation(
        flag_key=flag.key,
        value=rule.value,
        reason=Reason.TARGETING_MATCH,
        variant=rule.variant,
        rule_id=rule.id or None,
    )
    if rule.variations is not None:
        cr.experiment = _compile_experiment(rule, flag.key, groups, where, strict)
        if rule.ramp is not None and cr.schedule is not None:
            cr.schedule.ramp = (
                _ts(rule.ramp.start),
                _ts(rule.ramp.end),
                rule.ramp.from_coverage,
                rule.ramp.to_coverage,
            )
        cr.condition = None
        cr.coverage = None
        cr.range = None
        cr.bucketer = cr.experiment.bucketer
        cr.split = None
        cr.noop = False
        return cr
    cr.experiment = None
    cr.noop = not rule.force
    cr.condition = (
        compile_condition(
            rule.condition, saved_groups=groups, strict=strict, where=f"{where}.condition"
        )
        if rule.condition
        else None
    )
    cr.coverage = None if rule.coverage is None else float(rule.coverage)
    cr.range = None if rule.range is None else (float(rule.range[0]), float(rule.range[1]))
    cr.bucketer = _Bucketer(
        rule.hash_attribute, rule.fallback_attribute, rule.hash_version, rule.seed or flag.key
    )
    cr.split = _Split(rule.variants, flag.key, cr.evaluation, strict) if rule.variants else None
    return cr


def _compile_flag(flag: FlagDefinition, groups: Mapping[str, Any], strict: bool) -> _CompiledFlag:
    cf = _CompiledFlag()
    cf.key = flag.key
    cf.enabled = flag.enabled
    gates = [p.model_copy(update={"gate": True}) for p in flag.prerequisites]
    cf.gates = _compile_parents(gates, groups, f"flag {flag.key!r} prerequisites", strict)
    cf.rules = tuple(_compile_rule(flag, i, r, groups, strict) for i, r in enumerate(flag.rules))
    # a flag with no value of its own serves the caller's default: reason DEFAULT
    unset = flag.default_value is None and flag.default_variant is None
    cf.default_eval = Evaluation(
        flag_key=flag.key,
        value=flag.default_value,
        reason=Reason.DEFAULT if flag.rules or unset else Reason.STATIC,
        variant=flag.default_variant,
    )
    cf.targeting = _compile_targeting(flag, cf.rules, strict)
    base = Evaluation(flag_key=flag.key, value=True, reason=Reason.SPLIT)
    cf.split = _Split(flag.variants, flag.key, base, strict) if flag.variants else None
    return cf


_PLAIN_RULE_FIELDS = frozenset({"id", "condition", "value", "variant", "force"})


def _shared_targeting(flag: FlagDefinition) -> Mapping[str, Any] | None:
    """The one flagd targeting spec behind all of a flag's rules, if that is its shape.

    The flagd importer writes one rule per variant, each forcing that variant when
    ``{"$jsonLogic": {"rule": R, "variant": v}}`` holds, all with the same ``R``.
    Such a flag runs ``R`` once and looks the variant up (and a result naming no
    variant is an error, as in flagd), instead of running ``R`` per variant.
    """
    shared: Mapping[str, Any] | None = None
    for rule in flag.rules:
        cond = rule.condition
        if not isinstance(cond, Mapping) or len(cond) != 1 or "$jsonLogic" not in cond:
            return None
        spec = cond["$jsonLogic"]
        if not isinstance(spec, Mapping) or "rule" not in spec or rule.variant is None:
            return None
        if spec.get("variant") != rule.variant:
            return None
        if set(rule.model_dump(exclude_defaults=True)) - _PLAIN_RULE_FIELDS:
            return None
        if not rule.force:
            return None
        if shared is None:
            shared = spec
        elif {k: v for k, v in spec.items() if k != "variant"} != {
            k: v for k, v in shared.items() if k != "variant"
        }:
            return None
    return shared


def _compile_targeting(
    flag: FlagDefinition, rules: Sequence[_CompiledRule], strict: bool
) -> _Targeting | None:
    spec = _shared_targeting(flag)
    if spec is None:
        return None
    try:
        run = compile_targeting(spec, where=f"flag {flag.key!r} targeting")
    except ConfigurationError:
        if strict:
            raise
        return None  # lenient: the per-rule predicates never match, as before
    by_variant: dict[str, Evaluation] = {}
    for rule, compiled in zip(flag.rules, rules, strict=True):
        by_variant.setdefault(str(rule.variant), compiled.evaluation)
    return _Targeting(run, by_variant)


def _compile_bandits(raw: Mapping[str, Any], strict: bool) -> dict[str, _Bandit]:
    out: dict[str, _Bandit] = {}
    for ref, body in raw.items():
        if not isinstance(body, Mapping):
            raise ConfigurationError(f"contextual bandit {ref!r}: must be an object")
        version = body.get("banditVersion")
        if isinstance(version, bool) or not isinstance(version, int):
            version = None
        leaves = []
        for i, ctx in enumerate(body.get("contexts") or []):
            pred = compile_condition(
                ctx.get("condition") or {},
                strict=strict,
                where=f"contextual bandit {ref!r} contexts[{i}].condition",
            )
            leaves.append(
                (int(ctx.get("leafId", -1)), pred, tuple(float(w) for w in ctx["weights"]))
            )
        out[str(ref)] = _Bandit(version, tuple(leaves))
    return out


def find_prerequisite_cycle(flags: Sequence[FlagDefinition]) -> list[str] | None:
    """A cycle of flag keys linked by prerequisites (first key repeated at the end), or ``None``."""
    edges: dict[str, list[str]] = {}
    for f in flags:
        deps = [p.flag for p in f.prerequisites]
        for r in f.rules:
            deps.extend(p.flag for p in r.prerequisites)
        edges[f.key] = deps
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if state.get(nxt) is None and nxt in edges:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for key in edges:
        if state.get(key) is None:
            found = visit(key)
            if found:
                return found
    return None


def compile_snapshot(
    definitions: FlagSet,
    *,
    environment: str | None = None,
    version: int = 0,
    allow_cycles: bool = False,
    strict: bool = True,
    isolate: bool = False,
) -> Snapshot:
    """Validate and compile ``definitions`` into a :class:`Snapshot`.

    Raises :class:`ConfigurationError` naming the flag and field for unknown
    operators, invalid regexes, malformed rules and (unless ``allow_cycles``)
    prerequisite cycles. ``strict=False`` compiles unknown operators and invalid
    regexes into never-matching conditions instead (GrowthBook SDK behaviour).
    ``isolate=True`` raises for none of these: a flag that does not compile (or
    sits on a forbidden cycle) joins ``definitions.invalid`` and evaluates to
    PARSE_ERROR, and every other flag is served.
    """
    flags = [f.for_environment(environment) for f in definitions.flags]
    groups = definitions.saved_groups
    failed: dict[str, str] = {}
    if not allow_cycles:
        cycle = find_prerequisite_cycle(flags)
        while cycle:
            problem = f"flag {cycle[0]!r}: prerequisites: cycle {' -> '.join(cycle)}"
            if not isolate:
                raise ConfigurationError(problem)
            failed.update(dict.fromkeys(cycle, problem))
            flags = [f for f in flags if f.key not in failed]
            cycle = find_prerequisite_cycle(flags)
    compiled: dict[str, _CompiledFlag] = {}
    for flag in flags:
        try:
            compiled[flag.key] = _compile_flag(flag, groups, strict)
        except Exception as exc:
            if not isolate:
                raise
            # isolation is the point: whatever one definition does, the others are served
            text = (
                str(exc) if isinstance(exc, ConfigurationError) else f"{type(exc).__name__}: {exc}"
            )
            failed[flag.key] = text if flag.key in text else f"flag {flag.key!r}: {text}"
    if failed:
        definitions = definitions.model_copy(
            update={
                "flags": [f for f in definitions.flags if f.key not in failed],
                "invalid": {**definitions.invalid, **failed},
            }
        )
        flags = [f for f in flags if f.key not in failed]
    uses_time = any(
        r.start_at is not None or r.end_at is not None or r.ramp is not None
        for f in flags
        for r in f.rules
    )
    return Snapshot(
        compiled,
        definitions,
        _compile_bandits(definitions.contextual_bandits, strict),
        uses_time,
        version,
    )
