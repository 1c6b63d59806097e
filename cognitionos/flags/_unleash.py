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
_SEMVER_OPS = {"SEMVER_EQ": "$semverEq", "SEMVER_GT": "$semverGt", "SEMVER_LT": "$semverLt"}
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


def _variants(raw: Any, group: str, murmur_seed: int) -> dict[str, Any] | None:
    if not isinstance(raw, list) or not raw:
        return None
    variations = []
    for v in raw:
        if not isinstance(v, Mapping):
            continue
        item: dict[str, Any] = {
            "value": True,
            "key": str(v.get("name", "")),
            "weight": max(0.0, float(v.get("weight", 0) or 0)),
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
    variants = _variants(s.get("variants"), group, UNLEASH_VARIANT_SEED)
    if variants is not None:
        rule["variants"] = variants
    return rule


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
                cond["variant"] = {"$in": [str(v) for v in d["variants"]]}
        out.append(Prerequisite(flag=parent, condition=cond))
    return out


def flag_set_from_unleash(payload: Mapping[str, Any]) -> FlagSet:
    """Convert an Unleash client features payload into a :class:`FlagSet`."""
    if not isinstance(payload, Mapping):
        raise ConfigurationError("Unleash payload must be an object")
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
    for name, f in by_name.items():
        try:
            strategies = [s for s in f.get("strategies") or [] if isinstance(s, Mapping)]
            # an enabled toggle without strategies is on for everyone
            rules = [Rule.model_validate(_strategy(name, s, segments)) for s in strategies] or [
                Rule(value=True, force=True)
            ]
            # legacy flag-level variants hash with seed 0, strategy variants with the variant seed
            variants = _variants(f.get("variants"), name, 0)
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
        except ValidationError as exc:
            raise validation_error(exc, f"flag {name!r}") from None
    return FlagSet(flags=flags)
