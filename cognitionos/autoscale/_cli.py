"""``cognitionos autoscale``: replay a trace through a policy, or ask an HPA for a decision."""

from __future__ import annotations

from typing import Any

import click

from cognitionos._cli_common import FINITE, CommandGroup, FiniteFloat, echo_json, json_option, note


@click.group(cls=CommandGroup)
def autoscale() -> None:
    """Replica recommendations (HPA-exact, predictive, cost-aware) and trace replays."""


def _policy(
    kind: str,
    manifest: str | None,
    target: float,
    lo: int,
    hi: int,
    capacity: float,
    startup: float,
    lag: float,
) -> Any:
    from cognitionos.autoscale import (
        CostAwarePolicy,
        HPAPolicy,
        KedaPolicy,
        KedaTrigger,
        PredictivePolicy,
    )

    if kind == "keda":
        if manifest:
            with open(manifest, encoding="utf-8") as fh:
                return KedaPolicy.from_manifest(fh.read())
        # one requests-per-minute trigger at the target share of a replica's capacity
        trigger = KedaTrigger("requests_per_minute", target=capacity * target)
        return KedaPolicy(triggers=[trigger], min_replicas=lo, max_replicas=hi)
    if kind == "hpa":
        if manifest:
            with open(manifest, encoding="utf-8") as fh:
                return HPAPolicy.from_manifest(fh.read())
        return HPAPolicy(min_replicas=lo, max_replicas=hi, target_utilization=target)
    common: dict[str, Any] = {
        "capacity_per_replica": capacity,
        "min_replicas": lo,
        "max_replicas": hi,
        "startup_delay": startup,
        "metric_lag": lag,
    }
    if kind == "predictive":
        return PredictivePolicy(**common)
    return CostAwarePolicy(**common)


@autoscale.command()
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option(
    "--policy", "kind", type=click.Choice(["hpa", "predictive", "cost", "keda"]), default="hpa"
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="HPA (autoscaling/v2) for --policy hpa; ScaledObject for --policy keda (a metrics-api "
    "trigger named requests_per_minute).",
)
@click.option(
    "--target", type=FINITE, default=0.7, show_default=True, help="HPA CPU target (fraction)."
)
@click.option("--min-replicas", "lo", type=int, default=2, show_default=True)
@click.option("--max-replicas", "hi", type=int, default=100, show_default=True)
@click.option(
    "--capacity",
    type=FINITE,
    default=10.0,
    show_default=True,
    help="Requests/min one replica serves.",
)
@click.option("--startup-delay", type=FINITE, default=120.0, show_default=True, help="Seconds.")
@click.option("--metric-lag", type=FINITE, default=60.0, show_default=True, help="Seconds.")
@click.option("--minutes", type=int, default=0, help="Replay only the first N minutes.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write an SVG of load vs capacity.")
@click.option("--pods-per-node", type=int, default=None, help="Model nodes of this many pods.")
@click.option("--node-startup-delay", type=FINITE, default=0.0, show_default=True, help="Seconds.")
@click.option(
    "--spot-rate",
    type=FINITE,
    default=None,
    help="Model spot: interruptions per spot pod-hour (share: --spot-share, or the policy's).",
)
@click.option("--spot-share", type=FINITE, default=None, help="Fraction of pods on spot.")
@click.option(
    "--fallback-delay",
    type=FINITE,
    default=300.0,
    show_default=True,
    help="Seconds until an interrupted pod's on-demand replacement can start.",
)
@json_option
def simulate(
    trace: str,
    kind: str,
    manifest: str | None,
    target: float,
    lo: int,
    hi: int,
    capacity: float,
    startup_delay: float,
    metric_lag: float,
    minutes: int,
    plot: str | None,
    pods_per_node: int | None,
    node_startup_delay: float,
    spot_rate: float | None,
    spot_share: float | None,
    fallback_delay: float,
    as_json: bool,
) -> None:
    """Replay TRACE (CSV, requests per minute in the last column) through a policy."""
    from cognitionos._cli_common import progress
    from cognitionos.autoscale import load_trace
    from cognitionos.autoscale import simulate as run

    loads = load_trace(trace)
    if minutes:
        loads = loads[:minutes]
    policy = _policy(kind, manifest, target, lo, hi, capacity, startup_delay, metric_lag)
    days = list(range(0, len(loads) + 1440, 1440))
    ticks = iter(
        progress(days, len(days), "simulating days", enabled=None if len(days) > 1 else False)
    )

    def tick(done: int, total: int) -> None:
        next(ticks, None)

    from cognitionos.autoscale import SpotMarket

    spot = (
        None
        if spot_rate is None
        else SpotMarket(
            interruption_rate=spot_rate, fallback_delay=fallback_delay, share=spot_share
        )
    )
    report = run(
        policy,
        loads,
        capacity_per_replica=capacity,
        startup_delay=startup_delay,
        metric_lag=metric_lag,
        on_progress=tick,
        pods_per_node=pods_per_node,
        node_startup_delay=node_startup_delay,
        spot=spot,
    )
    for _ in ticks:
        pass
    if plot:
        from cognitionos.autoscale import plot_svg

        with open(plot, "w", encoding="utf-8") as fh:
            fh.write(plot_svg(loads, {kind: report.ready}, capacity_per_replica=capacity))
        note(f"plot written to {plot}")
    data = {"policy": kind, **report.as_dict()}
    if as_json:
        echo_json(data)
        return
    for k, v in data.items():
        click.echo(f"{k:>18}: {v}")


@autoscale.command()
@click.option("--manifest", type=click.Path(dir_okay=False), help="HPA manifest (autoscaling/v2).")
@click.option(
    "--target", type=FINITE, default=0.7, show_default=True, help="CPU target without --manifest."
)
@click.option("--min-replicas", "lo", type=int, default=2, show_default=True)
@click.option("--max-replicas", "hi", type=int, default=100, show_default=True)
@click.option("--current", type=int, required=True, help="Replicas running now (all ready).")
@click.option(
    "--cpu-utilization",
    "util",
    type=FiniteFloat(min=0),
    required=True,
    help="Average CPU use, percent of request.",
)
@json_option
def recommend(
    manifest: str | None, target: float, lo: int, hi: int, current: int, util: float, as_json: bool
) -> None:
    """One HPA decision for CURRENT ready pods averaging the given CPU utilization."""
    from cognitionos.autoscale import PodMetric, PodStatus, ScalingInput

    hpa = _policy("hpa", manifest, target, lo, hi, 1.0, 0.0, 0.0)
    if current < 0:
        raise click.BadParameter("must be >= 0", param_hint="--current")
    pods = tuple(PodStatus(f"pod-{i}", start_time=-3600.0, request=1000) for i in range(current))
    sample = PodMetric(round(util * 10), timestamp=-30.0, window=60.0)
    metrics = {m.name: {p.name: sample for p in pods} for m in hpa.metrics}
    d = hpa.decide(ScalingInput(current_replicas=current, now=0.0, pods=pods, metrics=metrics))
    data = {"replicas": d.replicas, "reason": d.reason, "desired": d.desired, "metric": d.metric}
    if as_json:
        echo_json(data)
        return
    note(f"from {current} replicas at {util:g}% CPU")
    click.echo(f"{d.replicas} ({d.reason})")


@autoscale.command()
@click.argument("manifests", type=click.Path(dir_okay=False))
@json_option
def lint(manifests: str, as_json: bool) -> None:
    """Check a YAML of HPAs/ScaledObjects; exit 1 on problems (two autoscalers, one workload)."""
    from cognitionos.autoscale import lint_manifests

    with open(manifests, encoding="utf-8") as fh:
        problems = lint_manifests(fh.read())
    if as_json:
        echo_json({"problems": problems})
    else:
        for p in problems:
            click.echo(p)
        note(f"{len(problems)} problem(s)")
    if problems:
        raise SystemExit(1)
