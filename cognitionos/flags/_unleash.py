"""Import Unleash client payloads (``GET /api/client/features``) into the definition model.

An Unleash toggle is on when it is enabled and any of its strategies matches;
each strategy becomes a rule forcing ``True``. Strategy constraints and
segments become a condition, rollout percentages become a coverage hashed
with MurmurHash3 exactly as Unleash SDKs do (``murmur3("<groupId>:<id>") % 100 + 1
<= percentage``), and variants keep their weights, stickiness and payloads.
Like Unleash SDKs, the importer is lenient about what it does not know: an
unknown strategy, operator or an invalid regular expression never matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from cognitionos.errors import ConfigurationError
from cognitionos.flags._growthbook import validation_error
from cognitionos.flags.models import FlagDefinition, FlagSet, Prerequisite, Rule
from cognitionos.hashing import UNLEASH_VARIANT_SEED

__all__ = ["flag_set_from_unleash"]

#: a condition no attributes satisfy: not(the empty condition)
NEVER: dict[str, Any] = {"$not": {}}

_ROLLOUT_STICKINESS = ["userId", "sessionId", "random"]
_VARIANT_STICKINESS = ["userId", "sessionId", "remoteAddress", "random"]

_STRING_OPS = {
    "STR_CONTAINS": "$contains",
    "STR_STARTS_WITH": "$startsWith",
    "STR_ENDS_WITH": "$endsWith",
}
_NUM_OPS = {
    "NUM_EQ": "$numEq",
    "NUM_GT": "$numGt",
    "NUM_GTE": "$numGte",
    "NUM_LT": "$numLt",
    "NUM_LTE": "$numLte",
}
_SEMVER_OPS = {
    "SEMVER_EQ": "$semverEq",
    "SEMVER_GT": "$semverGt",
    "SEMVER_GTE": "$semverGte",
    "SEMVER_LT": "$semverLt",
    "SEMVER_LTE": "$semverLte",
}
_DATE_OPS = {"DATE_AFTER": "$dateAfter", "DATE_BEFORE": "$dateBefore"}


def _values(c: Mapping[str, Any]) -> list[str]:
    vals = c.get("values")
    if isinstance(vals, list):
        return [str(v) for v in vals]
    if c.get("value") is not None:
        return [str(c["value"])]
    return []


def _constraint(c: Mapping[str, Any]) -> dict[str, Any]:
    """One Unleash constraint as a condition on its context field."""
    field = str(c.get("contextName", ""))
    op = str(c.get("operator", ""))
    insensitive = bool(c.get("caseInsensitive"))
    values = _values(c)
    value = c.get("value")
    cond: Any
    if op in ("IN", "NOT_IN"):
        base = "$ini" if insensitive else "$in"
        cond = {base: values}
        if op == "NOT_IN":
            cond = {"$not": cond}
    elif op in _STRING_OPS:
        cond = {_STRING_OPS[op] + ("i" if insensitive else ""): values}
    elif op in _NUM_OPS:
        cond = {_NUM_OPS[op]: value if value is not None else (values[0] if values else None)}
    elif op in _SEMVER_OPS:
        cond = {_SEMVER_OPS[op]: value if value is not None else (values[0] if values else "")}
    elif op in _DATE_OPS:
        cond = {_DATE_OPS[op]: value if value is not None else (values[0] if values else "")}
    elif op == "REGEX":
        pattern = value if isinstance(value, str) else (values[0] if values else "")
        cond = {"$matchesi" if insensitive else "$matches": pattern}
    elif op == "IN_CIDR":
        cond = {"$ipIn": values}
    else:
        return NEVER
    if c.get("inverted"):
        cond = {"$not": cond}
    return {field: cond}


def _split_list(raw: Any) -> list[str]:
    if raw is None:
        return []
    return [part.strip() for part in str(raw).split(",") if part.strip()]


def _percentage(raw: Any) -> float:
    try:
        return max(0.0, min(100.0, float(raw)))
    except (TypeError, ValueError):
        return 0.0


def _variant_weight(variant: Mapping[str, Any], group: str) -> float:
    """A variant's weight as a finite number >= 0; anything else names the variant."""
    raw = variant.get("weight", 0) or 0
    try:
        weight = float(raw)
    except (TypeError, ValueError, OverflowError):
        weight = math.nan
    if isinstance(raw, bool) or not math.isfinite(weight):
        raise ConfigurationError(
            f"Unleash feature {group!r} variant {str(variant.get('name', ''))!r}: "
            f"weight {raw!r} is not a number"
        )
    return max(0.0, weight)


def _variants(
    raw: Any, group: str, murmur_seed: int, stickiness: Any = None
) -> dict[str, Any] | None:
    """Unleash variants as a variant split.

    ``stickiness`` is the strategy's own stickiness: strategy variants follow it
    (their own ``stickiness`` field is not consulted, as in Unleash's engine);
    feature-level variants take the first variant's.
    """
    if not isinstance(raw, list) or not raw:
        return None
    variations = []
    for v in raw:
        if not isinstance(v, Mapping):
            continue
        item: dict[str, Any] = {
            "value": True,
            "key": str(v.get("name", "")),
            "weight": _variant_weight(v, group),
        }
        if v.get("payload") is not None:
            item["payload"] = v["payload"]
        overrides = v.get("overrides") or []
        ors = [
            {str(o.get("contextName", "")): {"$in": [str(x) for x in o.get("values") or []]}}
            for o in overrides
            if isinstance(o, Mapping)
        ]
        if ors:
            item["condition"] = {"$or": ors}
        variations.append(item)
    if not variations:
        return None
    sticky = stickiness
    if sticky is None:
        sticky = raw[0].get("stickiness") if isinstance(raw[0], Mapping) else None
    chain = _VARIANT_STICKINESS if sticky in (None, "", "default") else [str(sticky)]
    return {
        "variations": variations,
        "stickiness": chain,
        "seed": group,
        "hash_version": "unleash",
        "murmur_seed": murmur_seed,
    }


def _strategy(
    feature: str, s: Mapping[str, Any], segments: Mapping[Any, list[dict[str, Any]]]
) -> dict[str, Any]:
    name = str(s.get("name", ""))
    params = s.get("parameters") or {}
    parts: list[dict[str, Any]] = []
    for seg_id in s.get("segments") or []:
        seg = segments.get(seg_id)
        if seg is None:
            parts.append(NEVER)  # a strategy referring to an unknown segment is off
        else:
            parts.extend(seg)
    parts.extend(_constraint(c) for c in s.get("constraints") or [] if isinstance(c, Mapping))
    rule: dict[str, Any] = {"force": True, "value": True, "description": f"strategy {name}"}
    if s.get("id"):
        rule["id"] = str(s["id"])
    group = str(params.get("groupId") or feature)
    if name == "default":
        pass
    elif name == "userWithId":
        parts.append({"userId": {"$in": _split_list(params.get("userIds"))}})
    elif name in ("gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom"):
        attr = {"gradualRolloutUserId": "userId", "gradualRolloutSessionId": "sessionId"}.get(
            name, "random"
        )
        rule.update(
            hash_attribute=[attr],
            hash_version="unleash",
            seed=group,
            coverage=_percentage(params.get("percentage")) / 100,
        )
    elif name == "flexibleRollout":
        sticky = str(params.get("stickiness") or "default")
        chain = _ROLLOUT_STICKINESS if sticky == "default" else [sticky]
        rule.update(
            hash_attribute=chain,
            hash_version="unleash",
            seed=group,
            coverage=_percentage(params.get("rollout")) / 100,
        )
    elif name == "remoteAddress":
        parts.append({"remoteAddress": {"$ipIn": _split_list(params.get("IPs"))}})
    elif name == "applicationHostname":
        parts.append(
            {"hostname": {"$ini": [h.lower() for h in _split_list(params.get("hostNames"))]}}
        )
    else:
        parts.append(NEVER)  # unknown (custom) strategies are off, as in Unleash SDKs
    if parts:
        rule["condition"] = parts[0] if len(parts) == 1 else {"$and": parts}
    # strategy variants follow the strategy's stickiness ("default" without one)
    variants = _variants(
        s.get("variants"), group, UNLEASH_VARIANT_SEED, params.get("stickiness") or "default"
    )
    if variants is not None:
        rule["variants"] = variants
    return rule


_GROUP = "__internal-strategy-group"
_ROLLOUT_KEYS = ("hash_attribute", "hash_version", "seed", "coverage")


def _strategy_rules(
    feature: str, s: Mapping[str, Any], segments: Mapping[Any, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The rules of one strategy: any of them applying turns the toggle on.

    A plain strategy is one rule. A strategy group (``__internal-strategy-group``)
    with operator ``OR`` is the union of its members' rules; with ``AND`` every
    combination of member rules is merged into one rule (conditions joined). A
    merged rule can hold one percentage rollout: a combination needing two
    independent rollouts is not representable and is left out (never matches).
    """
    if s.get("name") != _GROUP:
        return [_strategy(feature, s, segments)]
    group = [m for m in s.get("group") or [] if isinstance(m, Mapping)]
    members = [_strategy_rules(feature, m, segments) for m in group]
    if str(s.get("operator", "AND")).upper() == "OR":
        return [r for alternatives in members for r in alternatives]
    combos: list[list[dict[str, Any]]] = [[]]
    for alternatives in members:
        combos = [[*combo, r] for combo in combos for r in alternatives]
    merged = [_merge_and(combo) for combo in combos]
    return [r for r in merged if r is not None]


def _always_in(rule: Mapping[str, Any]) -> bool:
    # a 100% rollout that falls back to a random draw lets everyone in
    chain = rule.get("hash_attribute") or []
    return bool(rule.get("coverage", 0) >= 1 and "random" in chain)


def _merge_and(rules: list[dict[str, Any]]) -> dict[str, Any] | None:
    out: dict[str, Any] = {"force": True, "value": True, "description": "strategy group"}
    conds = [r["condition"] for r in rules if r.get("condition") is not None]
    rollouts = [r for r in rules if "coverage" in r and not _always_in(r)]
    if len(rollouts) > 1:
        return None
    for r in rollouts:
        out.update({k: r[k] for k in _ROLLOUT_KEYS})
    for r in rules:
        if "variants" in r:
            out["variants"] = r["variants"]
            break
    if conds:
        out["condition"] = conds[0] if len(conds) == 1 else {"$and": conds}
    return out


def _refers_to_missing_segment(
    strategies: list[Mapping[str, Any]], segments: Mapping[Any, Any]
) -> bool:
    """Whether a strategy (or a member of a strategy group) names an unknown segment.

    Unleash's engine then treats the whole feature as off, whatever its other
    strategies say.
    """
    for s in strategies:
        if any(seg not in segments for seg in s.get("segments") or []):
            return True
        members = [m for m in s.get("group") or [] if isinstance(m, Mapping)]
        if members and _refers_to_missing_segment(members, segments):
            return True
    return False


def _dependencies(raw: Any, features: Mapping[str, Mapping[str, Any]]) -> list[Prerequisite]:
    out = []
    for d in raw or []:
        if not isinstance(d, Mapping):
            continue
        parent = str(d.get("feature", ""))
        parent_def = features.get(parent)
        if parent_def is None or parent_def.get("dependencies"):
            # missing parents, and parents with dependencies of their own, never satisfy
            out.append(Prerequisite(flag=parent or "<missing>", condition=NEVER))
            continue
        if d.get("enabled", True) is False:
            cond: dict[str, Any] = {"exists": True, "value": {"$ne": True}}
        else:
            cond = {"value": True}
            if d.get("variants"):
                # Unleash's engine checks the variant only when the parent serves one: a
                # parent on without a variant (Unleash's "disabled") satisfies any list
                wanted: list[Any] = [str(v) for v in d["variants"]]
                cond["variant"] = {"$in": [*wanted, None]}
        out.append(Prerequisite(flag=parent, condition=cond))
    return out


def _apply_delta_events(events: list[Any]) -> dict[str, Any]:
    """Fold the events of the Unleash delta API (``/api/client/delta``) into a full payload.

    ``hydration`` replaces everything; ``feature-updated`` / ``feature-removed`` and
    ``segment-updated`` / ``segment-removed`` upsert or delete one item, in event order.
    """
    features: dict[str, Any] = {}
    segments: dict[Any, Any] = {}
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ConfigurationError(f"Unleash delta payload: events[{i}] must be an object")
        kind = event.get("type")
        if kind == "hydration":
            features = {
                str(f.get("name")): f for f in event.get("features") or [] if isinstance(f, Mapping)
            }
            segments = {
                s.get("id"): s for s in event.get("segments") or [] if isinstance(s, Mapping)
            }
        elif kind == "feature-updated" and isinstance(event.get("feature"), Mapping):
            features[str(event["feature"].get("name"))] = event["feature"]
        elif kind == "feature-removed":
            features.pop(str(event.get("featureName")), None)
        elif kind == "segment-updated" and isinstance(event.get("segment"), Mapping):
            segments[event["segment"].get("id")] = event["segment"]
        elif kind == "segment-removed":
            segments.pop(event.get("segmentId"), None)
        # unknown event types are skipped, as Unleash SDKs do
    return {"features": list(features.values()), "segments": list(segments.values())}


def _problem(exc: Exception, name: str) -> ConfigurationError:
    """The library error for a toggle that failed to load, naming the toggle."""
    if isinstance(exc, ConfigurationError):
        return exc
    if isinstance(exc, ValidationError):
        return validation_error(exc, f"flag {name!r}")
    return ConfigurationError(f"flag {name!r}: {exc}")


def flag_set_from_unleash(payload: Mapping[str, Any], *, strict: bool = True) -> FlagSet:
    """Convert an Unleash client features payload into a :class:`FlagSet`.

    Both the full payload (``{"features": [...], "segments": [...]}``) and the delta
    API's ``{"events": [...]}`` are accepted. ``strict`` (the default) rejects the
    whole payload for one bad toggle; with ``strict=False`` each bad toggle lands in
    ``FlagSet.invalid`` with its reason.
    """
    if not isinstance(payload, Mapping):
        raise ConfigurationError("Unleash payload must be an object")
    if "features" not in payload and isinstance(payload.get("events"), list):
        payload = _apply_delta_events(payload["events"])
    raw_features = payload.get("features") or []
    if not isinstance(raw_features, list):
        raise ConfigurationError("Unleash payload: 'features' must be a list")
    segments: dict[Any, list[dict[str, Any]]] = {}
    for seg in payload.get("segments") or []:
        if isinstance(seg, Mapping) and "id" in seg:
            segments[seg["id"]] = [
                _constraint(c) for c in seg.get("constraints") or [] if isinstance(c, Mapping)
            ]
    by_name = {str(f.get("name")): f for f in raw_features if isinstance(f, Mapping)}
    flags = []
    invalid: dict[str, str] = {}
    for name, f in by_name.items():
        try:
            strategies = [s for s in f.get("strategies") or [] if isinstance(s, Mapping)]
            # an enabled toggle without strategies is on for everyone
            raw_rules = [r for s in strategies for r in _strategy_rules(name, s, segments)]
            if (strategies and not raw_rules) or _refers_to_missing_segment(strategies, segments):
                raw_rules = [{"force": True, "value": True, "condition": NEVER}]
            rules = [Rule.model_validate(r) for r in raw_rules] or [Rule(value=True, force=True)]
            # feature-level variants hash with the variant seed too, grouped by the feature name
            variants = _variants(f.get("variants"), name, UNLEASH_VARIANT_SEED)
            flags.append(
                FlagDefinition(
                    key=name,
                    description=str(f.get("description") or ""),
                    type="boolean",
                    default_value=False,
                    enabled=bool(f.get("enabled", False)),
                    rules=rules,
                    prerequisites=_dependencies(f.get("dependencies"), by_name),
                    variants=variants,  # type: ignore[arg-type]
                )
            )
        except (ConfigurationError, ValueError, TypeError) as exc:
            problem = _problem(exc, name)
            if strict:
                raise problem from None
            invalid[name] = str(problem)
    return FlagSet(flags=flags, invalid=invalid)
