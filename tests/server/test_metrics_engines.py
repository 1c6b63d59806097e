"""``/metrics`` of the reference server shows every engine it runs, with the right values.

Each engine is exercised through the API and the scrape is parsed with prometheus_client's
own parser. Expected values are counted from the requests this test made (and, for
experiment assignments, from a separate engine holding the same definition), never read
from the server first.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cognitionos.experiments import ExperimentEngine
from cognitionos.flags import FlagEngine

from .conftest import bearer, otlp_trace

EXPERIMENT = {
    "key": "banner",
    "arms": [{"key": "A"}, {"key": "B"}],
    "metrics": [{"name": "clicks", "kind": "count"}],
    # a quarter of the units stay out: assignments inside and outside are both counted
    "coverage": 0.75,
}


def scrape(c: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = c.get("/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_engine_is_on_metrics_with_what_was_done(server_factory, tmp_path):
    backups = tmp_path / "backups"
    server = server_factory(backup_dir=str(backups))
    c, h = server.client, bearer(server.root)
    before = scrape(c)
    # every engine's series is there from the start (DR: an empty catalog)
    for name in (
        "cognitionos_waf_inspected_total",
        "cognitionos_ratelimit_allowed_total",
        "cognitionos_flags_reload_errors_total",
        "cognitionos_experiments_assignments_total",
        "cognitionos_apm_tracer_spans_started_total",
        "cognitionos_apm_latency_recorded_total",
        "cognitionos_pricing_elasticity_fits_total",
        "cognitionos_autoscale_decisions_total",
        "cognitionos_dr_backups",
    ):
        assert (name, ()) in before, name
    assert value(before, "cognitionos_dr_backups") == 0
    assert value(before, "cognitionos_dr_last_backup_age_seconds") == float("inf")
    assert value(before, "cognitionos_experiments_assignments_total") == 0

    # WAF: one attack refused by the guard
    attack = c.get("/v1/flags", params={"q": "1 UNION SELECT password FROM users--"}, headers=h)
    assert attack.status_code == 403

    # flags: 3 evaluations of one flag; the same definition in a separate engine says
    # which (flag, variant or reason) series each one counts in
    flag = {
        "key": "checkout",
        "default_value": "old",
        "rules": [{"condition": {"country": "NL"}, "value": "new", "force": True}],
    }
    assert c.post("/v1/flags", json=flag, headers=h).status_code == 201
    flag_reference = FlagEngine.from_json({"flags": [flag]}, track_evaluations=True)
    for country in ("NL", "NL", "DE"):
        body = {"attributes": {"id": "u", "country": country}}
        assert c.post("/v1/flags/checkout/evaluate", json=body, headers=h).status_code == 200
        flag_reference.evaluate("checkout", body["attributes"])
    expected_flags = flag_reference.evaluation_counts()
    assert sum(expected_flags.values()) == 3 and len(expected_flags) == 2

    # experiments: 40 assignments, exposures of 30 units (assigned first), 30 + 4 events
    assert c.post("/v1/experiments", json=EXPERIMENT, headers=h).status_code == 201
    assert c.post("/v1/experiments/banner/start", headers=h).status_code == 200
    reference = ExperimentEngine("memory://")
    reference.create({**EXPERIMENT, "status": "running"})
    units = [f"u{i}" for i in range(40)]
    inside = [u for u in units if reference.assign("banner", u).in_experiment]
    assert 0 < len(inside) < 40
    for unit in units:
        assert c.post("/v1/experiments/banner/assign", json={"unit_id": unit}, headers=h).is_success
    exposed = inside[:30] if len(inside) >= 30 else inside
    r = c.post(
        "/v1/experiments/banner/exposures",
        json={"exposures": [{"unit_id": u} for u in exposed]},
        headers=h,
    )
    assert r.json()["first_exposures"] == len(exposed)
    events = [{"unit_id": u, "metric": "clicks", "value": 1, "event_id": f"e-{u}"} for u in exposed]
    c.post("/v1/experiments/banner/events", json={"events": events}, headers=h)
    c.post("/v1/experiments/banner/events", json={"events": events[:4]}, headers=h)  # retried

    # APM: one ingested trace (its route's latency), on top of the server's own spans
    assert c.post("/v1/apm/traces", json=otlp_trace("GET /x", 0.25), headers=h).status_code == 200

    # pricing: 2 elasticity fits + 1 optimal price estimated from observations
    obs = {"prices": [1.0, 2.0, 3.0, 4.0], "quantities": [500.0, 177.0, 96.2, 62.5]}
    for _ in range(2):
        assert c.post("/v1/pricing/elasticity", json=obs, headers=h).status_code == 200
    r = c.post("/v1/pricing/optimal-price", json={"observations": obs, "unit_cost": 1.0}, headers=h)
    assert r.status_code == 200, r.text

    # autoscale: 3 decisions, 1 simulation
    rec = {"current_replicas": 4, "cpu_utilization": 140, "policy": {"target_utilization": 0.7}}
    for _ in range(3):
        assert c.post("/v1/autoscale/recommend", json=rec, headers=h).status_code == 200
    assert c.post("/v1/autoscale/simulate", json={"trace": [1.0] * 10}, headers=h).is_success

    # DR: the platform's backup tool takes one backup (the server reads the catalog)
    from cognitionos.dr import BackupManager

    with BackupManager(server.state.settings.database_url, target=f"file://{backups}") as m:
        first = m.backup()
    after = scrape(c)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0.0)

    assert delta("cognitionos_waf_blocked_total") == 1
    assert delta("cognitionos_waf_inspected_total") >= 20
    assert delta("cognitionos_ratelimit_allowed_total") >= 20
    for (key, variant), n in expected_flags.items():
        assert delta("cognitionos_flags_evaluations_total", flag=key, variant=variant) == n
    # /assign answers 40 times; /exposures assigns each unit it records first
    assert delta("cognitionos_experiments_assignments_total") == len(inside) + len(exposed)
    assert delta("cognitionos_experiments_assignments_outside_total") == 40 - len(inside)
    assert delta("cognitionos_experiments_exposures_total") == len(exposed)
    assert delta("cognitionos_experiments_events_total") == len(exposed)
    assert delta("cognitionos_experiments_events_duplicate_total") == 4
    assert delta("cognitionos_apm_tracer_spans_started_total") >= 20
    assert delta("cognitionos_pricing_elasticity_fits_total") == 3
    assert delta("cognitionos_pricing_price_decisions_total") == 1
    assert delta("cognitionos_autoscale_decisions_total") == 3
    assert delta("cognitionos_autoscale_simulations_total") == 1
    assert value(after, "cognitionos_dr_backups") == 1
    assert value(after, "cognitionos_dr_unverified_backups") == 1
    assert 0 <= value(after, "cognitionos_dr_last_backup_age_seconds") < 600
    assert first.id


def test_flag_and_experiment_counters_sum_over_tenants(server):
    c = server.client
    tokens = [server.root, server.new_tenant("acme")[1]]
    flag = {"key": "beta", "default_value": True}
    for token in tokens:
        assert c.post("/v1/flags", json=flag, headers=bearer(token)).status_code == 201
        for _ in range(2):
            body = {"attributes": {"id": "u1"}}
            assert c.post("/v1/flags/beta/evaluate", json=body, headers=bearer(token)).is_success
    samples = scrape(c)
    reference = FlagEngine.from_json({"flags": [flag]}, track_evaluations=True)
    reference.evaluate("beta", {"id": "u1"})
    ((key, variant),) = reference.evaluation_counts()
    # one series per (flag, variant) for the process: 2 tenants x 2 evaluations
    assert value(samples, "cognitionos_flags_evaluations_total", flag=key, variant=variant) == 4
