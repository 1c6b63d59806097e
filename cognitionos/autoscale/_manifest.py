"""Read and write Kubernetes ``autoscaling/v2`` HorizontalPodAutoscaler manifests.

Quantities (``500m``, ``1k``, ``2Gi``) become integer milli-units, rounded up as Kubernetes'
``MilliValue`` does. API defaults are applied on read (``minReplicas`` 1, a CPU 80 %
utilization metric when ``metrics`` is empty, default ``scaleUp``/``scaleDown`` rules when
``behavior`` is present but one direction is not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from cognitionos._optional import require
from cognitionos.autoscale.models import (
    Behavior,
    ExternalMetric,
    MetricSpec,
    ObjectMetric,
    PodsMetric,
    ResourceMetric,
    ScalingPolicy,
    ScalingRules,
)
from cognitionos.errors import ConfigurationError

if TYPE_CHECKING:
    from cognitionos.autoscale.hpa import HPAPolicy

_SUFFIX = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(value: object, where: str) -> int:
    """A Kubernetes quantity as integer milli-units (``"1.5"`` -> 1500, ``"250m"`` -> 250)."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{where}: expected a quantity, got {value!r}")
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        return math.ceil(Decimal(repr(value)) * 1000)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: expected a quantity, got {value!r}")
    text = value.strip()
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E"):
        if text.endswith(suffix):
            number, mult = text[: -len(suffix)], _SUFFIX[suffix]
            break
    else:
        number, mult = text, Decimal(1)
    try:
        amount = Decimal(number) * mult * 1000
    except InvalidOperation:
        raise ConfigurationError(f"{where}: not a Kubernetes quantity: {value!r}") from None
    if not amount.is_finite():
        raise ConfigurationError(f"{where}: not a Kubernetes quantity: {value!r}")
    return math.ceil(amount)


def format_quantity(milli: int) -> str | int:
    """Integer milli-units back to the shortest canonical quantity (``1500`` -> ``"1500m"``)."""
    if milli % 1000 == 0:
        return milli // 1000
    return f"{milli}m"


def dump_yaml(doc: Mapping[str, Any]) -> str:
    """YAML text of ``doc`` keeping key order."""
    yaml = require("yaml", extra="autoscale", purpose="HPA manifests")
    return str(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False))


def _load(manifest: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(manifest, Mapping):
        return manifest
    if not isinstance(manifest, str):
        raise ConfigurationError(
            f"manifest must be YAML text or a dict, got {type(manifest).__name__}"
        )
    yaml = require("yaml", extra="autoscale", purpose="HPA manifests")
    try:
        doc = yaml.safe_load(manifest)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"manifest is not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ConfigurationError("manifest must be a YAML mapping")
    return doc


def _map(
    doc: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}.{key} must be a mapping")
    return value


def _int(doc: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{where}.{key} must be an integer, got {value!r}")
    return value


def _str(doc: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value


def _selector(metric: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    sel = metric.get("selector")
    if sel is None:
        return ()
    if not isinstance(sel, Mapping) or set(sel) - {"matchLabels"}:
        raise ConfigurationError(f"{where}.selector: only matchLabels is supported")
    labels = sel.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise ConfigurationError(f"{where}.selector.matchLabels must be a mapping")
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _target(target: Mapping[str, Any], where: str) -> tuple[str, int]:
    kind = target.get("type")
    if kind == "Utilization":
        return kind, _int(target, "averageUtilization", where)
    if kind == "AverageValue":
        return kind, parse_quantity(target.get("averageValue"), f"{where}.averageValue")
    if kind == "Value":
        return kind, parse_quantity(target.get("value"), f"{where}.value")
    raise ConfigurationError(
        f"{where}.type must be Utilization, AverageValue or Value, got {kind!r}"
    )


def _metric(raw: object, i: int) -> MetricSpec:
    where = f"spec.metrics[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must be a mapping")
    kind = raw.get("type")
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        body = _map(raw, key, where)
        ttype, value = _target(_map(body, "target", f"{where}.{key}"), f"{where}.{key}.target")
        container = (
            _str(body, "container", f"{where}.{key}") if kind == "ContainerResource" else None
        )
        name = _str(body, "name", f"{where}.{key}")
        if ttype == "Utilization":
            return ResourceMetric(name, target_utilization=value, container=container)
        if ttype == "AverageValue":
            return ResourceMetric(name, target_average_value=value, container=container)
        raise ConfigurationError(f"{where}: a resource target is Utilization or AverageValue")
    if kind == "Pods":
        body = _map(raw, "pods", where)
        metric = _map(body, "metric", f"{where}.pods")
        ttype, value = _target(_map(body, "target", f"{where}.pods"), f"{where}.pods.target")
        if ttype != "AverageValue":
            raise ConfigurationError(f"{where}: a Pods target must be AverageValue")
        return PodsMetric(
            _str(metric, "name", f"{where}.pods.metric"),
            value,
            _selector(metric, f"{where}.pods.metric"),
        )
    if kind == "Object":
        body = _map(raw, "object", where)
        metric = _map(body, "metric", f"{where}.object")
        ref = _map(body, "describedObject", f"{where}.object")
        ttype, value = _target(_map(body, "target", f"{where}.object"), f"{where}.object.target")
        if ttype == "Utilization":
            raise ConfigurationError(f"{where}: an Object target is Value or AverageValue")
        return ObjectMetric(
            _str(metric, "name", f"{where}.object.metric"),
            value,
            ttype,  # type: ignore[arg-type]
            described_object=(
                _str(ref, "apiVersion", f"{where}.object.describedObject", "v1"),
                _str(ref, "kind", f"{where}.object.describedObject"),
                _str(ref, "name", f"{where}.object.describedObject"),
            ),
            selector=_selector(metric, f"{where}.object.metric"),
        )
    if kind == "External":
        body = _map(raw, "external", where)
        metric = _map(body, "metric", f"{where}.external")
        ttype, value = _target(
            _map(body, "target", f"{where}.external"), f"{where}.external.target"
        )
        if ttype == "Utilization":
            raise ConfigurationError(f"{where}: an External target is Value or AverageValue")
        return ExternalMetric(
            _str(metric, "name", f"{where}.external.metric"),
            value,
            ttype,  # type: ignore[arg-type]
            selector=_selector(metric, f"{where}.external.metric"),
        )
    raise ConfigurationError(
        f"{where}.type must be Resource, ContainerResource, Pods, Object or External, got {kind!r}"
    )


def _rules(raw: Mapping[str, Any] | None, default: ScalingRules, where: str) -> ScalingRules:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must be a mapping")
    raw_policies = raw.get("policies")
    if raw_policies is None:
        policies = default.policies
    else:
        if not isinstance(raw_policies, list) or not raw_policies:
            raise ConfigurationError(f"{where}.policies must be a non-empty list")
        policies = tuple(
            ScalingPolicy(
                _str(p, "type", f"{where}.policies[{i}]"),  # type: ignore[arg-type]
                _int(p, "value", f"{where}.policies[{i}]"),
                _int(p, "periodSeconds", f"{where}.policies[{i}]"),
            )
            if isinstance(p, Mapping)
            else _bad(f"{where}.policies[{i}] must be a mapping")
            for i, p in enumerate(raw_policies)
        )
    window = raw.get("stabilizationWindowSeconds", default.stabilization_window_seconds)
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
        raise ConfigurationError(f"{where}.stabilizationWindowSeconds must be an integer")
    tolerance = raw.get("tolerance")
    if tolerance is not None:
        tolerance = parse_quantity(tolerance, f"{where}.tolerance") / 1000
    return ScalingRules(
        policies=policies,
        select_policy=raw.get("selectPolicy", default.select_policy),
        stabilization_window_seconds=window,
        tolerance=tolerance,
    )


def _bad(message: str) -> ScalingPolicy:
    raise ConfigurationError(message)


def hpa_kwargs_from_manifest(manifest: str | Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments of :class:`HPAPolicy` read from a manifest."""
    doc = _load(manifest)
    if doc.get("apiVersion") != "autoscaling/v2" or doc.get("kind") != "HorizontalPodAutoscaler":
        raise ConfigurationError(
            "manifest must be apiVersion autoscaling/v2, kind HorizontalPodAutoscaler; got "
            f"{doc.get('apiVersion')!r} {doc.get('kind')!r}"
        )
    meta = _map(doc, "metadata", "manifest", required=False)
    spec = _map(doc, "spec", "manifest")
    ref = _map(spec, "scaleTargetRef", "spec")
    raw_metrics = spec.get("metrics") or [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        }
    ]
    if not isinstance(raw_metrics, list):
        raise ConfigurationError("spec.metrics must be a list")
    behavior: Behavior | None = None
    raw_behavior = spec.get("behavior")
    if raw_behavior is not None:
        if not isinstance(raw_behavior, Mapping):
            raise ConfigurationError("spec.behavior must be a mapping")
        behavior = Behavior(
            scale_up=_rules(
                raw_behavior.get("scaleUp"),
                ScalingRules.default_scale_up(),
                "spec.behavior.scaleUp",
            ),
            scale_down=_rules(
                raw_behavior.get("scaleDown"),
                ScalingRules.default_scale_down(),
                "spec.behavior.scaleDown",
            ),
        )
    return {
        "name": _str(meta, "name", "metadata", "app"),
        "namespace": meta.get("namespace"),
        "scale_target": (
            _str(ref, "apiVersion", "spec.scaleTargetRef", "apps/v1"),
            _str(ref, "kind", "spec.scaleTargetRef"),
            _str(ref, "name", "spec.scaleTargetRef"),
        ),
        "min_replicas": _int(spec, "minReplicas", "spec", 1),
        "max_replicas": _int(spec, "maxReplicas", "spec"),
        "metrics": [_metric(m, i) for i, m in enumerate(raw_metrics)],
        "behavior": behavior,
    }


def _selector_out(selector: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"selector": {"matchLabels": dict(selector)}} if selector else {}


def _target_out(kind: str, value: int) -> dict[str, Any]:
    if kind == "Utilization":
        return {"type": kind, "averageUtilization": value}
    if kind == "AverageValue":
        return {"type": kind, "averageValue": format_quantity(value)}
    return {"type": kind, "value": format_quantity(value)}


def metric_to_dict(m: MetricSpec) -> dict[str, Any]:
    """One ``spec.metrics`` entry."""
    if isinstance(m, ResourceMetric):
        if m.target_utilization is not None:
            target = _target_out("Utilization", m.target_utilization)
        else:
            assert m.target_average_value is not None
            target = _target_out("AverageValue", m.target_average_value)
        if m.container is None:
            return {"type": "Resource", "resource": {"name": m.name, "target": target}}
        return {
            "type": "ContainerResource",
            "containerResource": {"name": m.name, "container": m.container, "target": target},
        }
    if isinstance(m, PodsMetric):
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": m.name, **_selector_out(m.selector)},
                "target": _target_out("AverageValue", m.target_average_value),
            },
        }
    if isinstance(m, ObjectMetric):
        api, kind, name = m.described_object
        return {
            "type": "Object",
            "object": {
                "metric": {"name": m.name, **_selector_out(m.selector)},
                "describedObject": {"apiVersion": api, "kind": kind, "name": name},
                "target": _target_out(m.target_type, m.target),
            },
        }
    return {
        "type": "External",
        "external": {
            "metric": {"name": m.name, **_selector_out(m.selector)},
            "target": _target_out(m.target_type, m.target),
        },
    }


def _rules_out(r: ScalingRules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.stabilization_window_seconds is not None:
        out["stabilizationWindowSeconds"] = r.stabilization_window_seconds
    out["selectPolicy"] = r.select_policy
    if r.tolerance is not None:
        out["tolerance"] = format_quantity(round(r.tolerance * 1000))
    out["policies"] = [
        {"type": p.type, "value": p.value, "periodSeconds": p.period_seconds} for p in r.policies
    ]
    return out


def hpa_to_dict(policy: HPAPolicy) -> dict[str, Any]:
    """The manifest of ``policy`` as a dict."""
    meta: dict[str, Any] = {"name": policy.name}
    if policy.namespace:
        meta["namespace"] = policy.namespace
    api, kind, name = policy.scale_target
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": api, "kind": kind, "name": name},
        "minReplicas": policy.min_replicas,
        "maxReplicas": policy.max_replicas,
        "metrics": [metric_to_dict(m) for m in policy.metrics],
    }
    if policy.behavior is not None:
        spec["behavior"] = {
            "scaleUp": _rules_out(policy.behavior.scale_up),
            "scaleDown": _rules_out(policy.behavior.scale_down),
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": spec,
    }


def lint_manifests(text: str) -> list[str]:
    """Problems in a multi-document YAML of HPAs and KEDA ScaledObjects.

    Reports manifests that do not parse and workloads targeted by more than one autoscaler
    (two HPA controllers fighting over one replica count; a KEDA ScaledObject owns an HPA).
    """
    yaml = require("yaml", extra="autoscale", purpose="HPA manifests")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    problems: list[str] = []
    owners: dict[tuple[str, str, str], list[str]] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc, Mapping):
            problems.append(f"document {i}: not a mapping")
            continue
        kind = doc.get("kind")
        meta = (
            _map(doc, "metadata", "manifest", required=False)
            if isinstance(doc.get("metadata", {}), Mapping)
            else {}
        )
        name = str(meta.get("name", f"#{i}"))
        namespace = str(meta.get("namespace") or "default")
        spec = doc.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        ref = spec.get("scaleTargetRef")
        ref = ref if isinstance(ref, Mapping) else {}
        if kind == "HorizontalPodAutoscaler":
            try:
                hpa_kwargs_from_manifest(doc)
            except ConfigurationError as exc:
                problems.append(f"HorizontalPodAutoscaler {namespace}/{name}: {exc}")
                continue
            target = (namespace, str(ref.get("kind")), str(ref.get("name")))
        elif kind == "ScaledObject":
            target = (namespace, str(ref.get("kind", "Deployment")), str(ref.get("name")))
        else:
            continue
        owners.setdefault(target, []).append(f"{kind} {name}")
    for (namespace, kind, name), who in owners.items():
        if len(who) > 1:
            problems.append(
                f"{kind} {namespace}/{name} is targeted by {len(who)} autoscalers: {', '.join(who)}"
            )
    return problems
