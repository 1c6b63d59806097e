"""``cognitionos experiment ...``: define, run and inspect experiments kept in a store.

Every command takes ``--store URL`` (before or after the command name; else
``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``) and listing/reporting commands
take ``--json`` (only JSON on stdout)::

    cognitionos experiment create checkout.json
    cognitionos experiment start checkout-v2
    cognitionos experiment assign checkout-v2 u1 --attr country=NL --json
    cognitionos experiment track checkout-v2 u1 revenue 12.5 --event-id order-17
    cognitionos experiment summary checkout-v2 --json
    cognitionos experiment analyze checkout-v2 --method bayesian
    cognitionos experiment analyze summary.json --json
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cognitionos._cli_common import FINITE, CommandGroup, echo_json, note, pick_store, store_option
from cognitionos.errors import ConfigurationError

__all__ = ["experiment"]


@contextmanager
def _engine(ctx: click.Context, store_url: str | None) -> Iterator[Any]:
    from cognitionos.experiments.engine import ExperimentEngine

    url = pick_store(store_url or ctx.obj.get("store"))
    engine = ExperimentEngine(store=url)
    try:
        yield engine
    finally:
        engine.close()


def _definition(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: an experiment definition must be a JSON object")
    return data


def _row(exp: Any) -> dict[str, Any]:
    return {
        "key": exp.key,
        "status": str(exp.status),
        "arms": [a.key for a in exp.arms],
        "weights": exp.weights,
        "coverage": exp.coverage,
        "metrics": [m.name for m in exp.metrics],
        "shipped": exp.shipped,
    }


@click.group(name="experiment", cls=CommandGroup)
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Store URL [env COGNITIONOS_STORE; default sqlite:///cognitionos.db].",
)
@click.pass_context
def experiment(ctx: click.Context, store: str | None) -> None:
    """A/B experiments: define, start, stop, assign, track and summarise."""
    ctx.obj = {"store": store}


@experiment.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@store_option
@click.pass_context
def create(ctx: click.Context, file: str, store_url: str | None) -> None:
    """Create an experiment from a JSON definition FILE."""
    with _engine(ctx, store_url) as engine:
        exp = engine.create(_definition(file))
    note(f"created experiment {exp.key!r} ({exp.status})")


@experiment.command("list")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def list_experiments(ctx: click.Context, store_url: str | None, as_json: bool) -> None:
    """List every experiment with its status, arms and metrics."""
    with _engine(ctx, store_url) as engine:
        rows = [_row(e) for e in engine.list()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        note("no experiments")
        return
    for r in rows:
        click.echo(
            f"{r['key']:<30} {r['status']:<8} arms={','.join(r['arms'])} "
            f"metrics={','.join(r['metrics']) or '-'}"
        )


@experiment.command("show")
@click.argument("key")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def show(ctx: click.Context, key: str, store_url: str | None, as_json: bool) -> None:
    """Show the full definition of experiment KEY and its exposure counts."""
    with _engine(ctx, store_url) as engine:
        exp = engine.get(key)
        doc = {
            "definition": exp.model_dump(mode="json"),
            "exposures": engine.exposure_report(key),
        }
    if as_json:
        echo_json(doc)
        return
    click.echo(json.dumps(doc, indent=2))


@experiment.command("phases")
@click.argument("key")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def phases_command(ctx: click.Context, key: str, store_url: str | None, as_json: bool) -> None:
    """Phases of experiment KEY: when each began, its weights, coverage and units."""
    with _engine(ctx, store_url) as engine:
        rows = engine.exposure_report(key)["phases"]
    if as_json:
        echo_json({"experiment": key, "phases": rows})
        return
    if not rows:
        click.echo(f"{key}: no phases (the experiment has not run)")
        return
    click.echo(f"{'phase':>5}  {'start (UTC)':<20} {'coverage':>8}  weights -> units")
    for r in rows:
        start = datetime.fromtimestamp(r["start"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        split = ", ".join(
            f"{arm} {w:.3g} -> {r['units'].get(arm, 0)}" for arm, w in r["weights"].items()
        )
        click.echo(f"{r['phase']:>5}  {start:<20} {r['coverage']:>8.3g}  {split}")


def _set_status(ctx: click.Context, key: str, store_url: str | None, running: bool) -> None:
    with _engine(ctx, store_url) as engine:
        exp = engine.start(key) if running else engine.stop(key)
    note(f"experiment {key!r} is {exp.status}")


@experiment.command("start")
@click.argument("key")
@store_option
@click.pass_context
def start(ctx: click.Context, key: str, store_url: str | None) -> None:
    """Start experiment KEY: it assigns units from now on."""
    _set_status(ctx, key, store_url, True)


@experiment.command("stop")
@click.argument("key")
@store_option
@click.pass_context
def stop(ctx: click.Context, key: str, store_url: str | None) -> None:
    """Stop experiment KEY: everyone gets the control arm."""
    _set_status(ctx, key, store_url, False)


def _attributes(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--attr {pair!r} must look like name=value")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw  # a bare word is a string
    return out


@experiment.command("assign")
@click.argument("key")
@click.argument("unit_id")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="A user attribute.")
@click.option("--expose", is_flag=True, help="Also record the exposure.")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def assign(
    ctx: click.Context,
    key: str,
    unit_id: str,
    attrs: tuple[str, ...],
    expose: bool,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Which arm UNIT_ID gets in experiment KEY (exit 1 when it is not in the experiment)."""
    attributes = _attributes(attrs)
    with _engine(ctx, store_url) as engine:
        if expose:
            a = engine.track_exposure(key, unit_id, attributes=attributes)
        else:
            a = engine.assign(key, unit_id, attributes)
    doc = {
        "experiment": key,
        "unit_id": unit_id,
        "variant": a.variant,
        "in_experiment": a.in_experiment,
        "hash_value": a.hash_value,
        "reason": str(a.reason),
    }
    if as_json:
        echo_json(doc)
    else:
        click.echo(f"{a.variant} ({a.reason})")
    if not a.in_experiment:
        ctx.exit(1)


@experiment.command("track")
@click.argument("key")
@click.argument("unit_id")
@click.argument("metric")
@click.argument("value", type=FINITE, default=1.0)
@click.option("--event-id", default=None, help="Idempotency key: the event counts once.")
@click.option("--denominator", type=FINITE, default=0.0, help="Denominator (ratio metrics).")
@click.option("--covariate", type=FINITE, default=None, help="Pre-period value (CUPED).")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def track(
    ctx: click.Context,
    key: str,
    unit_id: str,
    metric: str,
    value: float,
    event_id: str | None,
    denominator: float,
    covariate: float | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Record one METRIC event of UNIT_ID (counted, duplicate or unexposed)."""
    with _engine(ctx, store_url) as engine:
        outcome = engine.track(
            key,
            unit_id,
            metric,
            value,
            event_id,
            denominator=denominator,
            covariate=covariate,
        )
    if as_json:
        echo_json({"experiment": key, "unit_id": unit_id, "metric": metric, "outcome": outcome})
    else:
        click.echo(outcome)


@experiment.command("summary")
@click.argument("key")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def summary(ctx: click.Context, key: str, store_url: str | None, as_json: bool) -> None:
    """Sufficient statistics per arm and metric of experiment KEY."""
    import attrs

    with _engine(ctx, store_url) as engine:
        rows = [attrs.asdict(s) for s in engine.summary(key)]
        report = engine.exposure_report(key)
    if as_json:
        echo_json({"experiment": key, "arms": rows, **report})
        return
    if not rows:
        note(f"experiment {key!r} has no metrics")
    click.echo(f"{'metric':<20} {'arm':<16} {'n':>8} {'mean':>12} {'sum':>14} {'sum_sq':>14}")
    for r in rows:
        mean = r["sum"] / r["n"] if r["n"] else float("nan")
        click.echo(
            f"{r['metric']:<20} {r['arm']:<16} {r['n']:>8} {mean:>12.4g} "
            f"{r['sum']:>14.6g} {r['sum_sq']:>14.6g}"
        )
    note(f"units exposed to several arms: {report['multiple_exposures']}")


def _summaries_from_file(path: Path) -> tuple[list[Any], dict[str, int] | None]:
    """ArmSummary rows from a JSON file: ``summary --json`` output, or a list of rows."""
    from cognitionos.experiments._summary import ArmSummary

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not valid JSON ({exc})") from None
    units = None
    if isinstance(data, dict):
        units = data.get("units")
        data = data.get("arms")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ConfigurationError(
            f"{path}: expected a list of per-arm summaries, or the output of "
            "'cognitionos experiment summary KEY --json'"
        )
    rows = []
    for i, r in enumerate(data):
        try:
            fields: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in r.items()
            }
            rows.append(ArmSummary(**fields))
        except TypeError as exc:
            raise ConfigurationError(f"{path}: summary #{i}: {exc}") from None
    if units is not None and not (
        isinstance(units, dict) and all(isinstance(v, int) for v in units.values())
    ):
        raise ConfigurationError(f"{path}: 'units' must map arm names to unit counts")
    return rows, units


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


@experiment.command("analyze")
@click.argument("source")
@store_option
@click.option(
    "--method",
    type=click.Choice(["frequentist", "sequential", "msprt", "bayesian"]),
    default="frequentist",
    show_default=True,
)
@click.option("--alpha", type=FINITE, default=0.05, show_default=True)
@click.option(
    "--correction",
    default="holm",
    show_default=True,
    help="Multiple-comparison correction (bonferroni, holm, hochberg, sidak, bh, by, none).",
)
@click.option("--no-cuped", is_flag=True, help="Do not adjust with pre-period covariates.")
@click.option("--primary", default=None, help="Primary metric for the decision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def analyze_command(
    ctx: click.Context,
    source: str,
    store_url: str | None,
    method: str,
    alpha: float,
    correction: str,
    no_cuped: bool,
    primary: str | None,
    as_json: bool,
) -> None:
    """Results table of experiment SOURCE: a key in the store, or a JSON file of summaries.

    The file is what ``summary KEY --json`` prints (or a list of its ``arms`` rows). For a
    key, the control is the experiment's first arm and SRM is checked against its weights.
    """
    from cognitionos.experiments._analysis import DecisionRules, analyze

    weights = control = phases = None
    path = Path(source)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigurationError(f"{source}: no such file")
        summaries, units = _summaries_from_file(path)
    else:
        with _engine(ctx, store_url) as engine:
            exp = engine.get(source)
            summaries = engine.summary(source)
            units = engine.exposure_report(source)["units"]
            phases = engine.phase_units(source) or None
        control = exp.arms[0].key
        weights = dict(zip([a.key for a in exp.arms], exp.weights, strict=True))
    if not summaries:
        raise ConfigurationError(f"{source}: no metric summaries to analyze")
    result = analyze(
        summaries,
        method,
        alpha=alpha,
        correction=None if correction == "none" else correction,
        cuped=not no_cuped,
        control=control,
        weights=weights,
        units=units,
        rules=DecisionRules(primary=primary) if primary else None,
        phases=phases,
    )
    decision: dict[str, Any] = {
        "action": result.decision.action,
        "arm": result.decision.arm,
        "reasons": list(result.decision.reasons),
    }
    if as_json:
        echo_json(
            {
                "experiment": source,
                "method": result.method,
                "alpha": result.alpha,
                "correction": result.correction,
                "control": result.control,
                "srm_p_value": result.srm_p_value,
                "srm_detected": result.srm_detected,
                "srm_phases": [p.to_dict() for p in result.srm_phases],
                "decision": decision,
                "arms": [a.to_dict() for a in result.arms],
                "warnings": list(result.warnings),
            }
        )
        return
    bayes = method == "bayesian"
    last = "P(win)  E[loss]" if bayes else "p (adj.)"
    click.echo(
        f"{'metric':<18} {'arm':<14} {'n':>8} {'mean':>10} {'effect':>10} "
        f"{'rel.':>8} {'CI (abs.)':>23} {last}"
    )
    for a in result.arms:
        ci = f"[{_fmt(a.ci[0])}, {_fmt(a.ci[1])}]" if a.ci else "-"
        rel = _fmt(a.effect_rel * 100, "+.2f") + "%" if a.effect_rel is not None else "-"
        tail = (
            f"{_fmt(a.chance_to_win, '.3f')}  {_fmt(a.expected_loss)}"
            if bayes
            else _fmt(a.p_value_adjusted)
        )
        click.echo(
            f"{a.metric:<18} {a.arm:<14} {a.n:>8} {_fmt(a.mean):>10} "
            f"{_fmt(a.effect_abs):>10} {rel:>8} {ci:>23} {tail}"
        )
    srm = _fmt(result.srm_p_value)
    worst = f" (worst of {len(result.srm_phases)} phases)" if result.srm_phases else ""
    click.echo(f"SRM p-value{worst}: {srm}{' (mismatch)' if result.srm_detected else ''}")
    for ph in result.srm_phases:
        counts = ", ".join(f"{a} {n}" for a, n in ph.units.items())
        p_text = _fmt(ph.p_value) if ph.p_value is not None else "not checked (too few units)"
        click.echo(f"  phase {ph.phase}: {counts}: p = {p_text}")
    arm = f" {decision['arm']}" if decision["arm"] else ""
    click.echo(f"decision: {decision['action']}{arm}")
    for reason in decision["reasons"]:
        note(f"  {reason}")
    for warning in result.warnings:
        note(f"warning: {warning}")
