"""Import GrowthBook SDK payloads (``features`` + ``savedGroups``) into the definition model.

The mapping is field for field (camelCase to our names); rule kinds follow
the SDK: a rule with ``force`` forces a value, a rule with ``variations``
(or ``contextualVariations``) is an experiment, a rule with neither only
checks its prerequisites. Unknown *fields* are ignored, as the SDK does, so
newer payloads still load; unknown *operators* are rejected in strict mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from cognitionos.errors import ConfigurationError
from cognitionos.flags.models import FlagDefinition, FlagSet, Rule

__all__ = ["experiment_from_growthbook", "flag_set_from_growthbook", "validation_error"]


def validation_error(exc: ValidationError, where: str) -> ConfigurationError:
    """A ConfigurationError naming ``where`` (e.g. the flag) and each invalid field path."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{loc or '<root>'}: {err.get('msg', 'invalid')}")
    return ConfigurationError(f"{where}: " + "; ".join(parts))


def _infer_type(value: Any) -> Literal["boolean", "string", "number", "json"] | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (dict, list)):
        return "json"
    return None


def _variations(raw: Mapping[str, Any], values: list[Any]) -> list[dict[str, Any]]:
    meta = raw.get("meta") if isinstance(raw.get("meta"), list) else None
    weights = raw.get("weights") if isinstance(raw.get("weights"), list) else None
    use_weights = weights is not None and len(weights) == len(values)
    out = []
    for i, value in enumerate(values):
        item: dict[str, Any] = {"value": value}
        m = meta[i] if meta is not None and i < len(meta) and isinstance(meta[i], Mapping) else {}
        if m.get("key") not in (None, ""):
            item["key"] = str(m["key"])
        if m.get("name"):
            item["name"] = str(m["name"])
        if m.get("passthrough"):
            item["passthrough"] = True
        if use_weights:
            w = weights[i]  # type: ignore[index]
            if isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0:
                item["weight"] = w
        out.append(item)
    if use_weights and any("weight" not in item for item in out):
        for item in out:
            item.pop("weight", None)
    return out


def _parents(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    return [
        {
            "flag": p.get("id", ""),
            "condition": p.get("condition") or {},
            "gate": bool(p.get("gate")),
        }
        for p in raw
        if isinstance(p, Mapping)
    ]


def _filters(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    return [
        {
            "attribute": f.get("attribute") or "id",
            "seed": f.get("seed", ""),
            "hash_version": f.get("hashVersion", 2),
            "ranges": f.get("ranges", []),
        }
        for f in raw
        if isinstance(f, Mapping)
    ]


def _common(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw.get("id"):
        out["id"] = str(raw["id"])
    if raw.get("condition") is not None:
        out["condition"] = raw["condition"]
    prereqs = _parents(raw.get("parentConditions"))
    if prereqs:
        out["prerequisites"] = prereqs
    filters = _filters(raw.get("filters"))
    if filters:
        out["filters"] = filters
    if raw.get("hashAttribute"):
        out["hash_attribute"] = raw["hashAttribute"]
    if raw.get("fallbackAttribute"):
        out["fallback_attribute"] = raw["fallbackAttribute"]
    if raw.get("hashVersion") is not None:
        out["hash_version"] = raw["hashVersion"]
    if raw.get("seed"):
        out["seed"] = raw["seed"]
    return out


def _rule(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    out = _common(raw)
    if "force" in raw:
        out["force"] = True
        out["value"] = raw["force"]
        if raw.get("coverage") is not None:
            out["coverage"] = raw["coverage"]
        if raw.get("range") is not None:
            out["range"] = raw["range"]
        return out
    values = raw.get("variations")
    if values is None and raw.get("contextualVariations") is not None:
        values = raw["contextualVariations"]
        if raw.get("contextualBanditRef"):
            out["contextual_bandit"] = str(raw["contextualBanditRef"])
    if isinstance(values, list) and values:
        out["variations"] = _variations(raw, values)
        for src, dst in (
            ("coverage", "coverage"),
            ("ranges", "ranges"),
            ("namespace", "namespace"),
            ("key", "experiment_key"),
            ("name", "name"),
            ("phase", "phase"),
            ("bucketVersion", "bucket_version"),
            ("minBucketVersion", "min_bucket_version"),
            ("disableStickyBucketing", "disable_sticky_bucketing"),
        ):
            if raw.get(src) is not None:
                out[dst] = raw[src]
        return out
    if out.get("prerequisites"):
        return out
    return None  # the SDK ignores a rule with no outcome and no prerequisites


def _feature(key: str, feature: Any) -> FlagDefinition:
    """One GrowthBook feature as a flag; raises ConfigurationError naming what is wrong."""
    if not isinstance(feature, Mapping):
        raise ConfigurationError(f"flag {key!r}: feature definition must be an object")
    raw_rules = feature.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigurationError(f"flag {key!r} rules: must be a list")
    rules = []
    for i, raw_rule in enumerate(raw_rules):
        if not isinstance(raw_rule, Mapping):
            raise ConfigurationError(f"flag {key!r} rules[{i}]: rule must be an object")
        r = _rule(raw_rule)
        if r is None:
            continue
        try:
            rules.append(Rule.model_validate(r))
        except ValidationError as exc:
            raise validation_error(exc, f"flag {key!r} rules[{i}]") from None
    default = feature.get("defaultValue")
    try:
        return FlagDefinition(
            key=key, default_value=default, type=_infer_type(default), rules=rules
        )
    except ValidationError as exc:
        raise validation_error(exc, f"flag {key!r}") from None


def flag_set_from_growthbook(payload: Mapping[str, Any], *, strict: bool = True) -> FlagSet:
    """Convert a GrowthBook payload into a :class:`FlagSet` (validation only; no compilation).

    ``strict`` (the default) rejects the whole payload for one bad feature; with
    ``strict=False`` each bad feature lands in ``FlagSet.invalid`` with its reason.
    """
    if not isinstance(payload, Mapping):
        raise ConfigurationError("GrowthBook payload must be an object")
    features = payload.get("features") or {}
    if not isinstance(features, Mapping):
        raise ConfigurationError("GrowthBook payload: 'features' must be an object")
    flags = []
    invalid: dict[str, str] = {}
    for key, feature in features.items():
        try:
            flags.append(_feature(str(key), feature))
        except ConfigurationError as exc:
            if strict:
                raise
            invalid[str(key)] = str(exc)
    groups = payload.get("savedGroups") or {}
    bandits = payload.get("contextualBandits") or {}
    if not isinstance(groups, Mapping) or not isinstance(bandits, Mapping):
        raise ConfigurationError(
            "GrowthBook payload: 'savedGroups' and 'contextualBandits' must be objects"
        )
    try:
        return FlagSet(
            flags=flags,
            saved_groups={k: v for k, v in groups.items() if isinstance(v, list)},
            contextual_bandits=dict(bandits),
            invalid=invalid,
        )
    except ValidationError as exc:
        raise validation_error(exc, "GrowthBook payload") from None


def experiment_from_growthbook(raw: Mapping[str, Any]) -> tuple[Rule, bool, int | None]:
    """An inline GrowthBook experiment as ``(rule, active, forced variation)``."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("variations"), list):
        raise ConfigurationError("experiment: needs 'key' and a list of 'variations'")
    out = _common(raw)
    out["experiment_key"] = str(raw.get("key", ""))
    out["variations"] = _variations(raw, list(raw["variations"])) or [{"value": None}]
    for src, dst in (
        ("coverage", "coverage"),
        ("ranges", "ranges"),
        ("namespace", "namespace"),
        ("name", "name"),
        ("phase", "phase"),
        ("bucketVersion", "bucket_version"),
        ("minBucketVersion", "min_bucket_version"),
        ("disableStickyBucketing", "disable_sticky_bucketing"),
    ):
        if raw.get(src) is not None:
            out[dst] = raw[src]
    try:
        rule = Rule.model_validate(out)
    except ValidationError as exc:
        raise validation_error(exc, f"experiment {raw.get('key')!r}") from None
    force = raw.get("force")
    forced = force if isinstance(force, int) and not isinstance(force, bool) else None
    active = raw.get("active") is not False and raw.get("status") != "draft"
    return rule, active, forced
