"""``/v1/experiments``: definitions (If-Match updates), start/stop, assignment, exposure and
metric ingestion in batches, per-arm sums, analysis and shipping the winner as a flag.

Each tenant's experiments live under its own store namespace (``tenants/<id>/``). Definition
changes are administrative (audited); assignments and tracked events are data (not audited,
like flag evaluations). Analysis runs off the event loop under the compute limiter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import Experiment, ExperimentEngine
from cognitionos.server._compute import engine_errors, offload, plain
from cognitionos.server._directory import decode_cursor, encode_cursor
from cognitionos.server._http import (
    PageParams,
    Principal,
    check_if_match,
    content_etag,
    idempotent,
    page_params,
    record,
    require,
    state_of,
)
from cognitionos.server._problems import ApiError, invalid_body

__all__ = ["router"]

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

ExpKey = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Unit = Annotated[str, Field(min_length=1, max_length=200)]
Attributes = Annotated[dict[str, Any], Field(max_length=100)]
#: most exposures or metric events one request may carry
MAX_BATCH = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignBody(Strict):
    unit_id: Unit
    attributes: Attributes = Field(default_factory=dict)


class Exposure(Strict):
    unit_id: Unit
    variant: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="the arm seen; absent: the unit is assigned first"
    )
    attributes: Attributes = Field(default_factory=dict)


class Exposures(Strict):
    exposures: Annotated[list[Exposure], Field(min_length=1, max_length=MAX_BATCH)]


class MetricEvent(Strict):
    unit_id: Unit
    metric: Annotated[str, Field(min_length=1, max_length=200)]
    value: float = 1.0
    event_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="deduplicates retries: one count per (unit, event id)"
    )
    denominator: float = 0.0
    covariate: float | None = None


class MetricEvents(Strict):
    events: Annotated[list[MetricEvent], Field(min_length=1, max_length=MAX_BATCH)]


class AnalyzeBody(Strict):
    method: Literal["frequentist", "sequential", "msprt", "bayesian"] = "frequentist"
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    correction: Literal[
        "none", "bonferroni", "holm", "hochberg", "sidak", "holm-sidak", "hommel", "bh", "by"
    ] = "holm"
    cuped: bool = True
    difference: Literal["absolute", "relative"] = "absolute"


class Ship(Strict):
    variant: Annotated[str, Field(min_length=1, max_length=200)]
    flag_key: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")] | None
    ) = Field(None, description="the flag to write (default: the experiment's key)")


def _doc(exp: Experiment) -> dict[str, Any]:
    doc: dict[str, Any] = exp.model_dump(mode="json")
    return doc


def _respond(exp: Experiment, status: int = 200, **headers: str) -> JSONResponse:
    doc = _doc(exp)
    tag = content_etag(doc)
    return JSONResponse({**doc, "etag": tag}, status_code=status, headers={"ETag": tag, **headers})


def _engine(request: Request, p: Principal) -> ExperimentEngine:
    engine = state_of(request).experiments(p.tenant_id)
    engine_errors(engine.reload)  # another process may have changed a definition
    return engine


def _find(engine: ExperimentEngine, key: str) -> Experiment:
    try:
        return engine.get(key)
    except ConfigurationError:
        raise ApiError(404, f"no experiment {key!r} in this tenant") from None


def _parse(definition: dict[str, Any]) -> Experiment:
    try:
        return Experiment.model_validate(definition)
    except ValidationError as exc:
        raise invalid_body(exc, "experiment definition") from None


@router.get("", summary="Experiments of your tenant")
def list_experiments(
    request: Request,
    p: Annotated[Principal, Depends(require("experiments:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    try:
        after = decode_cursor(page.cursor)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    exps = _engine(request, p).list()
    if after is not None:
        exps = [e for e in exps if e.key > after]
    chunk = exps[: page.limit]
    items = [{**_doc(e), "etag": content_etag(_doc(e))} for e in chunk]
    more = len(exps) > page.limit
    return {"items": items, "next_cursor": encode_cursor(chunk[-1].key) if more else None}


@router.post("", status_code=201, summary="Define an experiment (created as a draft)")
def create_experiment(
    request: Request,
    p: Annotated[Principal, Depends(require("experiments:write"))],
    definition: Annotated[dict[str, Any], Body(description="An experiment definition")],
) -> Response:
    exp = _parse(definition)
    engine = _engine(request, p)

    def create() -> Response:
        if exp.key in {e.key for e in engine.list()}:
            raise ApiError(409, f"experiment {exp.key!r} exists; PATCH it with If-Match")
        created = engine_errors(lambda: engine.create(exp))
        record(request, p, "experiment.create", f"experiments/{exp.key}", None, _doc(created))
        return _respond(created, 201, Location=f"/v1/experiments/{exp.key}")

    return idempotent(request, p, definition, create)


@router.get("/{key}", summary="One experiment (with its ETag)")
def get_experiment(
    request: Request, key: ExpKey, p: Annotated[Principal, Depends(require("experiments:read"))]
) -> Response:
    return _respond(_find(_engine(request, p), key))


@router.patch("/{key}", summary="Change fields of an experiment (If-Match)")
def update_experiment(
    request: Request,
    key: ExpKey,
    p: Annotated[Principal, Depends(require("experiments:write"))],
    changes: Annotated[
        dict[str, Any], Body(description="Fields to replace, e.g. arms, coverage, metrics")
    ],
) -> Response:
    engine = _engine(request, p)
    current = _find(engine, key)
    check_if_match(request, content_etag(_doc(current)))
    if changes.get("key", key) != key:
        raise ApiError(422, f"an experiment cannot be renamed ({key!r} -> {changes['key']!r})")
    _parse({**_doc(current), **changes})  # field paths for a bad change
    updated = engine_errors(lambda: engine.update(key, changes))
    record(request, p, "experiment.update", f"experiments/{key}", _doc(current), _doc(updated))
    return _respond(updated)


@router.delete("/{key}", status_code=204, summary="Delete an experiment and its data (If-Match)")
def delete_experiment(
    request: Request, key: ExpKey, p: Annotated[Principal, Depends(require("experiments:write"))]
) -> Response:
    engine = _engine(request, p)
    current = _find(engine, key)
    check_if_match(request, content_etag(_doc(current)))
    engine_errors(lambda: engine.delete(key))
    record(request, p, "experiment.delete", f"experiments/{key}", _doc(current), None)
    return Response(status_code=204)


def _transition(request: Request, p: Principal, key: str, action: str) -> Response:
    engine = _engine(request, p)
    before = _find(engine, key)
    after = engine_errors(lambda: engine.start(key) if action == "start" else engine.stop(key))
    record(
        request,
        p,
        f"experiment.{action}",
        f"experiments/{key}",
        {"status": str(before.status)},
        {"status": str(after.status)},
    )
    return _respond(after)


@router.post("/{key}/start", summary="Start assigning units")
def start_experiment(
    request: Request, key: ExpKey, p: Annotated[Principal, Depends(require("experiments:write"))]
) -> Response:
    return _transition(request, p, key, "start")


@router.post("/{key}/stop", summary="Stop: every unit gets the control arm")
def stop_experiment(
    request: Request, key: ExpKey, p: Annotated[Principal, Depends(require("experiments:write"))]
) -> Response:
    return _transition(request, p, key, "stop")


def _assignment_doc(a: Any) -> dict[str, Any]:
    return {
        "experiment": a.experiment_key,
        "variant": a.variant,
        "in_experiment": a.in_experiment,
        "reason": str(a.reason),
        "value": plain(a.value),
    }


@router.post("/{key}/assign", summary="The arm of one unit (no exposure recorded)")
def assign(
    request: Request,
    key: ExpKey,
    body: AssignBody,
    p: Annotated[Principal, Depends(require("experiments:assign"))],
) -> dict[str, Any]:
    engine = state_of(request).experiments(p.tenant_id)
    a = engine.assign(key, body.unit_id, body.attributes)
    if str(a.reason) == "unknown_experiment":
        engine_errors(engine.reload)
        a = engine.assign(key, body.unit_id, body.attributes)
        if str(a.reason) == "unknown_experiment":
            raise ApiError(404, f"no experiment {key!r} in this tenant")
    return _assignment_doc(a)


@router.post("/{key}/exposures", summary="Record exposures (up to 1000 per request)")
def track_exposures(
    request: Request,
    key: ExpKey,
    body: Exposures,
    p: Annotated[Principal, Depends(require("experiments:assign"))],
) -> dict[str, Any]:
    """Exposures with a ``variant`` are recorded as given; without one the unit is assigned
    first and recorded only when it is in the experiment."""
    engine = _engine(request, p)
    _find(engine, key)
    records: list[tuple[str, str]] = []
    for e in body.exposures:
        if e.variant is not None:
            records.append((e.unit_id, e.variant))
            continue
        a = engine.assign(key, e.unit_id, e.attributes)
        if a.in_experiment and a.variant is not None:
            records.append((e.unit_id, a.variant))
    first = engine_errors(lambda: engine.track_exposures(key, records))
    return {
        "recorded": len(records),
        "first_exposures": first,
        "not_in_experiment": len(body.exposures) - len(records),
    }


@router.post("/{key}/events", summary="Record metric events (up to 1000 per request)")
def track_events(
    request: Request,
    key: ExpKey,
    body: MetricEvents,
    p: Annotated[Principal, Depends(require("experiments:assign"))],
) -> dict[str, Any]:
    """Counts per outcome: ``counted``, ``duplicate`` (same unit and event id as before) and
    ``unexposed`` (the unit has no exposure yet; kept out of the statistics)."""
    engine = _engine(request, p)
    _find(engine, key)
    events = [e.model_dump() for e in body.events]
    counts: dict[str, Any] = engine_errors(lambda: engine.track_many(key, events))
    return counts


def _summary_rows(engine: ExperimentEngine, key: str) -> list[Any]:
    rows: list[Any] = engine_errors(lambda: engine.summary(key))
    return rows


@router.get("/{key}/summary", summary="Units and metric sums per arm")
def summary(
    request: Request, key: ExpKey, p: Annotated[Principal, Depends(require("experiments:read"))]
) -> dict[str, Any]:
    import attrs

    engine = _engine(request, p)
    _find(engine, key)
    rows = [plain(attrs.asdict(s)) for s in _summary_rows(engine, key)]
    report = engine_errors(lambda: engine.exposure_report(key))
    return {"experiment": key, "arms": rows, **plain(report)}


@router.post("/{key}/analyze", summary="Compare every arm with the control (off the event loop)")
async def analyze_experiment(
    request: Request,
    key: ExpKey,
    body: AnalyzeBody,
    p: Annotated[Principal, Depends(require("experiments:read"))],
) -> dict[str, Any]:
    """The control is the first arm; the sample-ratio check uses the configured weights."""
    from cognitionos.experiments import analyze

    engine = state_of(request).experiments(p.tenant_id)

    def run() -> dict[str, Any]:
        engine.reload()
        exp = _find(engine, key)
        rows = engine.summary(key)
        if not rows:
            raise ApiError(422, f"experiment {key!r} has no metrics to analyze")
        units = engine.exposure_report(key)["units"]
        result = analyze(
            rows,
            body.method,
            alpha=body.alpha,
            correction=None if body.correction == "none" else body.correction,
            cuped=body.cuped,
            difference=body.difference,
            control=exp.arms[0].key,
            weights=dict(zip([a.key for a in exp.arms], exp.weights, strict=True)),
            units=units,
        )
        return {"experiment": key, **plain(result.to_dict())}

    result: dict[str, Any] = await offload(request, run)
    return result


@router.post("/{key}/ship", summary="Ship an arm: write it as a flag and stop the experiment")
def ship(
    request: Request,
    key: ExpKey,
    body: Ship,
    p: Annotated[Principal, Depends(require("experiments:write"))],
) -> dict[str, Any]:
    """Needs ``flags:write`` too: shipping writes the flag (default: the experiment's key)."""
    state = state_of(request)
    if not state.policy.allows(p.role, p.tenant_id, "flags:write"):
        raise ApiError(403, f"role {p.role!r} lacks the scope 'flags:write' needed to ship")
    engine = _engine(request, p)
    before = _find(engine, key)
    if body.variant not in [a.key for a in before.arms]:
        raise ApiError(422, f"experiment {key!r} has no arm {body.variant!r}")
    flags = state.flags(p.tenant_id)
    flag = engine_errors(
        lambda: engine.ship(key, body.variant, flags=flags, flag_key=body.flag_key, actor=p.key_id)
    )
    after = _find(engine, key)
    record(
        request,
        p,
        "experiment.ship",
        f"experiments/{key}",
        {"status": str(before.status), "shipped": before.shipped},
        {"status": str(after.status), "shipped": after.shipped, "flag": flag.key},
    )
    return {"experiment": _doc(after), "flag": flag.model_dump(mode="json")}
