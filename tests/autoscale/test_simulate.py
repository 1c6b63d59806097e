"""Simulator accounting (hand-derived), predictive/cost-aware policies, KEDA rendering."""

from __future__ import annotations

import math

import pytest

from cognitionos.autoscale import (
    CostAwarePolicy,
    CronWindow,
    Decision,
    HPAPolicy,
    KedaScaledObject,
    PredictivePolicy,
    ScalingInput,
    plot_svg,
    simulate,
)
from cognitionos.errors import ConfigurationError


class Scripted:
    """Asks for the next count of a script at every decision and records what it saw."""

    min_replicas = 1
    max_replicas = 100

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.seen: list[tuple[int, int]] = []

    def decide(self, inp: ScalingInput) -> Decision:
        self.seen.append((inp.current_replicas, inp.metrics["requests_per_minute"][0]))  # type: ignore[index]
        return Decision(self.script.pop(0) if self.script else inp.current_replicas, "scripted")


def test_fixed_capacity_accounting():
    r = simulate(
        Scripted([2, 2, 2, 2]), [0, 30, 30, 5], capacity_per_replica=10, initial_replicas=2
    )
    assert r.violation_minutes == 2  # 30 > 2 x 10 twice
    assert r.unserved_requests == 20
    assert r.served_requests == 0 + 20 + 20 + 5
    assert r.replica_hours == pytest.approx(2 * 4 / 60)
    assert r.cost == pytest.approx(2 * 4 / 60)
    assert r.flips == 0


def test_startup_delay_and_lagged_metric():
    p = Scripted([5, 5, 5, 5])
    r = simulate(
        p,
        [40, 40, 40, 41],
        capacity_per_replica=10,
        startup_delay=120,
        metric_lag=60,
        initial_replicas=2,
    )
    # pods asked for at minute 0 are ready at minute 2: minutes 0 and 1 run on 2 replicas
    assert r.ready == (2, 2, 5, 5)
    assert r.replicas == (5, 5, 5, 5)
    assert r.violation_minutes == 2
    assert r.unserved_requests == 40
    # the policy sees the load of one minute earlier (minute 0 sees minute 0: no history)
    assert [seen for _, seen in p.seen] == [40_000, 40_000, 40_000, 40_000]
    p2 = Scripted([])
    simulate(p2, [1, 2, 3, 4], capacity_per_replica=10, metric_lag=60, initial_replicas=1)
    assert [seen for _, seen in p2.seen] == [1000, 1000, 2000, 3000]


def test_flips_count_direction_changes():
    r = simulate(Scripted([3, 4, 3, 4]), [1, 1, 1, 1], capacity_per_replica=10, initial_replicas=2)
    assert (r.scale_ups, r.scale_downs, r.flips) == (3, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"capacity_per_replica": 0}, "capacity_per_replica"),
        ({"startup_delay": -1}, "startup_delay"),
        ({"decision_interval": 0}, "decision_interval"),
    ],
)
def test_bad_simulation_parameters(kwargs, needle):
    with pytest.raises(ConfigurationError, match=needle):
        simulate(Scripted([]), [1.0], **kwargs)


def test_bad_traces():
    with pytest.raises(ConfigurationError, match="empty"):
        simulate(Scripted([]), [])
    with pytest.raises(ConfigurationError, match=">= 0"):
        simulate(Scripted([]), [1.0, -2.0])


def test_predictive_converges_on_a_constant_load():
    # constant 50 req/min: forecast errors are all 0, so the headroom falls to 0 and the
    # policy settles on exactly 50 / 10 = 5 replicas (the floor HPA at 100% agrees)
    floor = HPAPolicy(min_replicas=1, max_replicas=50, target_utilization=1.0)
    p = PredictivePolicy(
        capacity_per_replica=10, min_replicas=1, max_replicas=50, season_minutes=60, floor=floor
    )
    r = simulate(p, [50.0] * 400, capacity_per_replica=10)
    assert p.headroom_z == 0.0
    assert p.point_forecast(3) == pytest.approx(50.0)
    assert r.replicas[-1] == 5


def _bursty(days: int, season: int) -> list[float]:
    # a repeating step pattern: quiet, then a sudden 8x rush for a sixth of each season
    out = []
    for d in range(days):
        for m in range(season):
            rush = season // 2 <= m < season // 2 + season // 6
            out.append(160.0 + 7 * (d % 2) if rush else 20.0)
    return out


def test_predictive_beats_the_hpa_on_a_periodic_rush():
    season = 120
    trace = _bursty(10, season)
    kwargs = {"capacity_per_replica": 10.0, "startup_delay": 120, "metric_lag": 60}
    hpa = simulate(
        HPAPolicy(min_replicas=2, max_replicas=100, target_utilization=0.7), trace, **kwargs
    )
    pred = simulate(
        PredictivePolicy(capacity_per_replica=10.0, season_minutes=season, history_days=3),
        trace,
        **kwargs,
    )
    # the HPA is late on every rush (lag + start-up); the forecast is there before it
    assert hpa.violation_minutes >= 10 * 3
    assert pred.violation_minutes < hpa.violation_minutes / 3


def test_cost_aware_quantile_follows_prices():
    cheap_outage = CostAwarePolicy(
        capacity_per_replica=10, on_demand_price=6.0, violation_cost_per_minute=0.2
    )
    dear_outage = CostAwarePolicy(
        capacity_per_replica=10, on_demand_price=6.0, violation_cost_per_minute=50
    )
    # newsvendor: q = 1 - (price per minute) / (violation cost per minute)
    assert cheap_outage.quantile == pytest.approx(0.5)
    assert dear_outage.quantile == pytest.approx(1 - 0.1 / 50)
    spot = CostAwarePolicy(
        capacity_per_replica=10, on_demand_price=0.1, spot_price=0.02, spot_share=0.75
    )
    assert spot.price_per_replica_hour == pytest.approx(0.25 * 0.1 + 0.75 * 0.02)
    r = simulate(spot, [30.0] * 120, capacity_per_replica=10)
    assert r.cost == pytest.approx(r.replica_hours * 0.04)


def test_policy_parameter_errors():
    with pytest.raises(ConfigurationError, match="quantile"):
        PredictivePolicy(capacity_per_replica=10, quantile=1.0)
    with pytest.raises(ConfigurationError, match="capacity_per_replica"):
        PredictivePolicy(capacity_per_replica=0)
    with pytest.raises(ConfigurationError, match="spot_share"):
        CostAwarePolicy(capacity_per_replica=10, spot_share=2)


def test_keda_round_trip():
    pytest.importorskip("yaml")
    obj = KedaScaledObject(
        name="web",
        target="web",
        min_replicas=2,
        max_replicas=100,
        polling_interval=60,
        scale_down_window=900,
        metrics_api_url="http://recommender:8080/replicas/web",
        value_location="replicas",
        activation_value=1,
        cpu_utilization=90,
        cron=(CronWindow("0 9 * * *", "59 9 * * *", 12, "Europe/Paris"),),
        namespace="shop",
    )
    text = obj.to_manifest()
    assert KedaScaledObject.from_manifest(text) == obj
    import yaml

    doc = yaml.safe_load(text)
    assert doc["spec"]["triggers"][0]["metadata"]["targetValue"] == "1"
    assert doc["spec"]["triggers"][1] == {
        "type": "cron",
        "metadata": {
            "timezone": "Europe/Paris",
            "start": "0 9 * * *",
            "end": "59 9 * * *",
            "desiredReplicas": "12",
        },
    }
    with pytest.raises(ConfigurationError, match="ScaledObject"):
        KedaScaledObject.from_manifest(text.replace("ScaledObject", "ScaledJob"))


def test_keda_cron_floors_come_from_the_fitted_profile():
    pytest.importorskip("yaml")
    day = [100.0 if 9 * 60 <= m < 17 * 60 else 10.0 for m in range(1440)]
    p = PredictivePolicy(capacity_per_replica=10.0)
    simulate(p, day * 2, capacity_per_replica=10.0)
    obj = KedaScaledObject.from_policy(p, name="web", target="web")
    by_hour = {int(w.start.split()[1]): w.replicas for w in obj.cron}
    for hour in range(9, 17):
        assert by_hour[hour] >= 10  # 100 req/min at 10 per replica
    night = [by_hour.get(h, 0) for h in range(0, 8)]
    assert max(night) < min(by_hour[h] for h in range(9, 17))
    assert obj.cpu_utilization == 90
    assert KedaScaledObject.from_manifest(obj.to_manifest()) == obj
    assert math.isfinite(p.headroom_z)


def test_plot_svg_draws_load_and_capacity():
    import xml.etree.ElementTree as ET

    trace = [10.0] * 30 + [50.0] * 30
    r = simulate(Scripted([]), trace, capacity_per_replica=10, initial_replicas=3)
    svg = plot_svg(trace, {"fixed": r.ready}, capacity_per_replica=10.0, window_minutes=40)
    root = ET.fromstring(svg)
    lines = [el for el in root.iter() if el.tag.endswith("polyline")]
    assert len(lines) == 2  # load and one policy's capacity
    assert len(lines[0].get("points").split()) == 40
    # the busiest 40-minute window starts at minute 0 or later and ends at the last minute
    assert "minute 59" in svg
    with pytest.raises(ConfigurationError, match="points"):
        plot_svg(trace, {"short": (1, 2)}, capacity_per_replica=10.0)


def test_cli_simulate_writes_a_plot(tmp_path):
    from click.testing import CliRunner

    from cognitionos.cli import main

    trace = tmp_path / "t.csv"
    trace.write_text("minute,requests\n" + "".join(f"m{i},{20 + i}\n" for i in range(30)))
    out = tmp_path / "plot.svg"
    r = CliRunner().invoke(
        main, ["autoscale", "simulate", str(trace), "--plot", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<svg")


def test_node_provisioning_delays_pods_and_idle_nodes_are_released():
    script = [5, 5, 5, 5, 5, 5, 2]
    trace = [30.0] * 20
    kw = {"capacity_per_replica": 10, "startup_delay": 60, "metric_lag": 60, "initial_replicas": 2}
    r = simulate(
        Scripted(script),
        trace,
        pods_per_node=2,
        node_startup_delay=180,
        node_idle_timeout=600,
        **kw,
    )
    # the 2 initial pods fill node 0; 3 new pods need nodes 1 and 2, up at minute 3, and
    # their own 1-minute start-up begins then
    assert r.ready[:8] == (2, 2, 2, 2, 5, 5, 2, 2)
    assert r.max_nodes == 3
    # nodes 1 and 2 are empty from minute 6 and released 10 minutes later
    assert r.node_hours == pytest.approx((16 * 3 + 4 * 1) / 60)
    assert r.violation_minutes == 4 + 14
    plain = simulate(Scripted(script), trace, **kw)
    assert plain.ready[:3] == (2, 5, 5) and plain.violation_minutes == 1 + 14
    assert plain.node_hours == 0


def test_spot_interruptions_fall_back_to_on_demand_after_a_delay():
    from cognitionos.autoscale import SpotMarket

    market = SpotMarket(
        share=0.5, interruption_rate=60, fallback_delay=120, spot_price=0.3, on_demand_price=1.2
    )
    r = simulate(
        Scripted([]),
        [30.0] * 10,
        capacity_per_replica=10,
        startup_delay=60,
        initial_replicas=4,
        spot=market,
    )
    # 2 of the 4 pods are on spot and (rate 60/h = every minute) interrupted at minute 0;
    # their on-demand replacements are schedulable at minute 2 and ready at minute 3
    assert r.spot_interruptions == 2
    assert r.ready[:4] == (2, 2, 2, 4)
    assert r.violation_minutes == 3
    assert r.cost == pytest.approx(10 * 4 * 1.2 / 60)  # all on demand from minute 0 on


def test_spot_interruptions_are_seeded_and_near_their_rate():
    from cognitionos.autoscale import SpotMarket

    def run(seed):
        return simulate(
            Scripted([]),
            [10.0] * 6000,
            capacity_per_replica=10,
            initial_replicas=2,
            spot=SpotMarket(share=1.0, interruption_rate=0.5, fallback_delay=0, seed=seed),
        )

    a, b = run(1), run(1)
    assert a.spot_interruptions == b.spot_interruptions and a.ready == b.ready
    # the fallback pods are on demand, so spot exposure ends after each pod's first hit:
    # 2 pods, each interrupted within ~2 h (rate 0.5/h), and never again
    assert a.spot_interruptions == 2
    with pytest.raises(ConfigurationError, match="interruption_rate"):
        SpotMarket(interruption_rate=-1)
    with pytest.raises(ConfigurationError, match="pods_per_node"):
        simulate(Scripted([]), [1.0], pods_per_node=0)
