"""Experiments, pricing, APM, autoscale and DR through the server: behaviour of each route.

Expected values come from the definitions (deterministic assignment reproduced by a separate
engine, sums of what was posted), from published results (BG/NBD on CDNOW) or from the
formulas themselves (Lerner rule, the HPA replica formula), never from a server answer.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from cognitionos.experiments import ExperimentEngine

from .conftest import bearer, otlp_trace

CHECKOUT = {
    "key": "checkout",
    "arms": [{"key": "A", "value": "old"}, {"key": "B", "value": "new"}],
    "metrics": [{"name": "revenue", "kind": "continuous"}],
}


def _etag(c: Any, path: str, h: dict[str, str]) -> str:
    tag: str = c.get(path, headers=h).headers["etag"]
    return tag


def test_experiment_lifecycle_assignment_ingest_analysis_ship(server):
    c, h = server.client, bearer(server.root)
    assert c.post("/v1/experiments", json=CHECKOUT, headers=h).status_code == 201
    assert c.post("/v1/experiments", json=CHECKOUT, headers=h).status_code == 409
    draft = c.post("/v1/experiments/checkout/assign", json={"unit_id": "u1"}, headers=h).json()
    assert draft["in_experiment"] is False and draft["reason"] == "not_running"
    assert c.post("/v1/experiments/checkout/start", headers=h).json()["status"] == "running"

    # the reference: the same definition, running, in a separate engine on its own store
    reference = ExperimentEngine("memory://")
    reference.create({**CHECKOUT, "status": "running"})
    units = [f"u{i}" for i in range(300)]
    arms = {}
    for unit in units[:20]:
        got = c.post("/v1/experiments/checkout/assign", json={"unit_id": unit}, headers=h).json()
        assert got["variant"] == reference.assign("checkout", unit).variant
        assert got["value"] == {"A": "old", "B": "new"}[got["variant"]]
    for unit in units:
        arms[unit] = reference.assign("checkout", unit).variant

    exposures = {"exposures": [{"unit_id": u} for u in units]}
    r = c.post("/v1/experiments/checkout/exposures", json=exposures, headers=h).json()
    assert r == {"recorded": 300, "first_exposures": 300, "not_in_experiment": 0}
    events = [
        {"unit_id": u, "metric": "revenue", "value": (10.0 if arms[u] == "B" else 8.0) + i % 3,
         "event_id": f"order-{u}"}
        for i, u in enumerate(units)
    ]  # fmt: skip
    assert c.post("/v1/experiments/checkout/events", json={"events": events}, headers=h).json() == {
        "counted": 300,
        "duplicate": 0,
        "unexposed": 0,
    }
    # a retried batch is deduplicated by event id
    again = c.post("/v1/experiments/checkout/events", json={"events": events[:5]}, headers=h)
    assert again.json() == {"counted": 0, "duplicate": 5, "unexposed": 0}

    summary = c.get("/v1/experiments/checkout/summary", headers=h).json()
    for arm in ("A", "B"):
        row = next(s for s in summary["arms"] if s["arm"] == arm)
        mine = [e["value"] for e in events if arms[e["unit_id"]] == arm]
        assert row["n"] == len(mine) == summary["units"][arm]
        assert row["sum"] == pytest.approx(sum(mine))
        assert row["sum_sq"] == pytest.approx(sum(v * v for v in mine))

    result = c.post("/v1/experiments/checkout/analyze", json={"cuped": False}, headers=h).json()
    (b,) = [a for a in result["arms"] if a["arm"] == "B"]
    mean = {
        arm: sum(e["value"] for e in events if arms[e["unit_id"]] == arm)
        / sum(1 for u in units if arms[u] == arm)
        for arm in ("A", "B")
    }
    assert b["effect_abs"] == pytest.approx(mean["B"] - mean["A"])
    assert result["control"] == "A" and b["p_value"] < 1e-6

    shipped = c.post("/v1/experiments/checkout/ship", json={"variant": "B"}, headers=h)
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["experiment"]["status"] == "stopped"
    assert shipped.json()["experiment"]["shipped"] == "B"
    flag = c.post("/v1/flags/checkout/evaluate", json={"attributes": {"id": "u7"}}, headers=h)
    assert flag.json()["value"] == "new"
    actions = [e["entry"]["action"] for e in c.get("/v1/audit", headers=h).json()["items"]]
    assert [a for a in actions if a.startswith("experiment.")] == [
        "experiment.create",
        "experiment.start",
        "experiment.ship",
    ]


def test_experiment_updates_need_if_match_and_validate(server):
    c, h = server.client, bearer(server.root)
    c.post("/v1/experiments", json=CHECKOUT, headers=h)
    path = "/v1/experiments/checkout"
    assert c.patch(path, json={"coverage": 0.5}, headers=h).status_code == 428
    stale = {**h, "If-Match": '"stale"'}
    assert c.patch(path, json={"coverage": 0.5}, headers=stale).status_code == 412
    tag = _etag(c, path, h)
    bad = c.patch(path, json={"coverage": 2}, headers={**h, "If-Match": tag})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/coverage"
    renamed = c.patch(path, json={"key": "other"}, headers={**h, "If-Match": tag})
    assert renamed.status_code == 422
    ok = c.patch(path, json={"coverage": 0.5}, headers={**h, "If-Match": tag})
    assert ok.status_code == 200 and ok.json()["coverage"] == 0.5 and ok.headers["etag"] != tag
    assert c.delete(path, headers={**h, "If-Match": tag}).status_code == 412
    assert c.delete(path, headers={**h, "If-Match": ok.headers["etag"]}).status_code == 204
    assert c.get(path, headers=h).status_code == 404


def test_experiment_batches_are_bounded_and_name_bad_events(server):
    c, h = server.client, bearer(server.root)
    c.post("/v1/experiments", json=CHECKOUT, headers=h)
    too_many = {"exposures": [{"unit_id": f"u{i}", "variant": "A"} for i in range(1001)]}
    r = c.post("/v1/experiments/checkout/exposures", json=too_many, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    unknown = {"events": [{"unit_id": "u1", "metric": "nope"}]}
    r = c.post("/v1/experiments/checkout/events", json=unknown, headers=h)
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    wrong_arm = {"exposures": [{"unit_id": "u1", "variant": "Z"}]}
    r = c.post("/v1/experiments/checkout/exposures", json=wrong_arm, headers=h)
    assert r.status_code == 422 and "'Z'" in r.json()["detail"]


def test_ship_needs_flag_write_too(server):
    c, h = server.client, bearer(server.root)
    c.post("/v1/experiments", json=CHECKOUT, headers=h)
    # a policy where the caller may change experiments but not flags
    policy = server.state.policy
    original = policy.allows

    def no_flags(role: str, tenant: str, scope: str) -> bool:
        return scope != "flags:write" and original(role, tenant, scope)

    policy.allows = no_flags  # type: ignore[method-assign]
    try:
        r = c.post("/v1/experiments/checkout/ship", json={"variant": "B"}, headers=h)
    finally:
        policy.allows = original  # type: ignore[method-assign]
    assert r.status_code == 403 and "flags:write" in r.json()["detail"]
    assert c.get("/v1/flags/checkout", headers=h).status_code == 404


def test_elasticity_and_optimal_price(server):
    c, h = server.client, bearer(server.root)
    prices = [2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    # exact constant-elasticity demand q = 500 p^-1.5
    quantities = [500 * p**-1.5 for p in prices]
    r = c.post(
        "/v1/pricing/elasticity", json={"prices": prices, "quantities": quantities}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["estimate"] == pytest.approx(-1.5, abs=1e-9) and r.json()["n"] == 6
    # Lerner rule under constant elasticity e: p* = c e / (1 + e) = 4 * -2 / -1 = 8
    r = c.post("/v1/pricing/optimal-price", json={"elasticity": -2.0, "unit_cost": 4.0}, headers=h)
    assert r.json()["decision"]["price"] == pytest.approx(8.0)
    # estimated first from the observations: e = -1.5 -> p* = 2 * -1.5 / -0.5 = 6
    body = {"observations": {"prices": prices, "quantities": quantities}, "unit_cost": 2.0}
    r = c.post("/v1/pricing/optimal-price", json=body, headers=h).json()
    assert r["decision"]["price"] == pytest.approx(6.0, rel=1e-6)
    assert r["elasticity"]["estimate"] == pytest.approx(-1.5)
    both = {"elasticity": -2.0, "observations": body["observations"]}
    assert c.post("/v1/pricing/optimal-price", json=both, headers=h).status_code == 422
    uneven = {"prices": prices, "quantities": quantities[:-1]}
    assert c.post("/v1/pricing/elasticity", json=uneven, headers=h).status_code == 422
    zero = {"prices": prices, "quantities": [0.0, *quantities[1:]]}
    r = c.post("/v1/pricing/elasticity", json=zero, headers=h)
    assert r.status_code == 422 and "log(0)" in r.json()["detail"]


def test_input_sizes_are_bounded(server):
    from cognitionos.server._routes import pricing

    c, h = server.client, bearer(server.root)
    n = pricing.MAX_ROWS + 1
    r = c.post("/v1/pricing/elasticity", json={"prices": [1.0] * n, "quantities": [1.0] * n},
               headers=h)  # fmt: skip
    assert r.status_code == 422
    trace = {"trace": [1.0] * (14 * 1440 + 1)}
    assert c.post("/v1/autoscale/simulate", json=trace, headers=h).status_code == 422
    boot = {"prices": [1, 2, 3], "quantities": [3, 2, 1], "bootstrap": 10_000}
    assert c.post("/v1/pricing/elasticity", json=boot, headers=h).status_code == 422


def test_clv_predict_reproduces_the_published_bg_nbd_example(server):
    """Fader, Hardie & Lee (2005), CDNOW: r=0.243, alpha=4.414, a=0.793, b=2.426; a customer
    with x=2, t_x=30.43, T=38.86 (weeks) is expected to buy 1.226 times in the next 39 weeks."""
    c, h = server.client, bearer(server.root)
    model = {
        "format": "cognitionos.pricing.model",
        "version": 1,
        "model": "bg_nbd",
        "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    }
    rows = [
        {"frequency": 2, "recency": 30.43, "T": 38.86},
        {"frequency": 0, "recency": 0, "T": 38.86},
    ]
    r = c.post("/v1/pricing/clv/predict", json={"transaction_model": model, "rows": rows,
               "horizon": 39}, headers=h)  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["expected_purchases"][0] == pytest.approx(1.226, abs=2e-3)
    assert doc["probability_alive"][1] == 1.0  # no repeat purchase: cannot have dropped out
    assert "frequency 0" in doc["notes"][0] and "mbg_nbd" in doc["notes"][0]
    assert doc["lifetime_value"] is None
    wrong = {"transaction_model": {**model, "model": "nope"}, "rows": rows}
    assert c.post("/v1/pricing/clv/predict", json=wrong, headers=h).status_code == 422


def test_clv_fit_round_trips_into_predict(server):
    import random

    c, h = server.client, bearer(server.root)
    rng = random.Random(7)
    rows = []
    for _ in range(400):  # customers simulated from the BG/NBD story over 40 weeks
        rate, p_drop = rng.gammavariate(2.0, 1 / 8.0), rng.betavariate(1.0, 6.0)
        t, purchases, last = 0.0, 0, 0.0
        while True:
            t += rng.expovariate(rate)
            if t > 40.0:
                break
            purchases, last = purchases + 1, t
            if rng.random() < p_drop:
                break
        spend = rng.gammavariate(4.0, 10.0) if purchases else 0.0
        rows.append({"frequency": purchases, "recency": last, "T": 40.0, "monetary_value": spend})
    fit = c.post("/v1/pricing/clv/fit", json={"rows": rows}, headers=h)
    assert fit.status_code == 200, fit.text
    models = fit.json()
    assert models["transaction_model"]["model"] == "bg_nbd"
    assert models["spend_model"]["model"] == "gamma_gamma"
    assert models["transaction_model"]["n_customers"] == 400
    pred = c.post("/v1/pricing/clv/predict", json={**models, "rows": rows[:50]}, headers=h).json()
    assert len(pred["lifetime_value"]) == 50
    # more past purchases at the same recency and age never predict fewer future ones
    same = [{"frequency": f, "recency": 30.0, "T": 40.0} for f in (1, 2, 4, 8)]
    more = c.post("/v1/pricing/clv/predict", json={"transaction_model": models[
        "transaction_model"], "rows": same}, headers=h).json()["expected_purchases"]  # fmt: skip
    assert more == sorted(more)
    bad = [{"frequency": 2, "recency": 50.0, "T": 40.0}] * 3  # recency after the end
    r = c.post("/v1/pricing/clv/fit", json={"rows": bad}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_autoscale_simulate_recommend_and_manifest_round_trip(server):
    c, h = server.client, bearer(server.root)
    idle = c.post("/v1/autoscale/simulate", json={"trace": [0.0] * 120}, headers=h).json()
    assert idle["violation_minutes"] == 0 and idle["max_replicas"] == 2 and idle["scale_ups"] == 0
    # 10 replicas serve at most 100 req/min; a load of 10000 can never be served
    flood = {"trace": [10_000.0] * 60, "policy": {"min_replicas": 1, "max_replicas": 10}}
    r = c.post("/v1/autoscale/simulate", json=flood, headers=h).json()
    assert r["max_replicas"] <= 10 and r["unserved_requests"] >= 60 * (10_000 - 100)
    series = c.post("/v1/autoscale/simulate", json={"trace": [5.0] * 30, "series": True},
                    headers=h).json()  # fmt: skip
    assert len(series["replicas"]) == 30
    # the HPA formula: ceil(current * utilization / target) = ceil(4 * 140 / 70) = 8
    rec = {"current_replicas": 4, "cpu_utilization": 140, "policy": {"target_utilization": 0.7}}
    assert c.post("/v1/autoscale/recommend", json=rec, headers=h).json()["replicas"] == 8
    # inside the 10 % tolerance nothing changes
    rec["cpu_utilization"] = 74
    assert c.post("/v1/autoscale/recommend", json=rec, headers=h).json()["replicas"] == 4
    rendered = c.post("/v1/autoscale/hpa/render", json={"min_replicas": 3, "max_replicas": 12,
                      "target_utilization": 0.6, "name": "web"}, headers=h).json()  # fmt: skip
    assert (
        "maxReplicas: 12" in rendered["manifest"]
        and "averageUtilization: 60" in rendered["manifest"]
    )
    back = c.post("/v1/autoscale/hpa/normalize", json={"manifest": rendered["manifest"]},
                  headers=h)  # fmt: skip
    assert back.status_code == 200, back.text
    assert back.json()["document"] == rendered["document"]
    assert (back.json()["min_replicas"], back.json()["max_replicas"]) == (3, 12)
    bad = c.post("/v1/autoscale/hpa/normalize", json={"manifest": "kind: Nope\n"}, headers=h)
    assert bad.status_code == 422


def test_dr_plan_and_retention_preview(server):
    c, h = server.client, bearer(server.root)
    # 1 TB restored at 1 MB/s takes 1e6 s, far over a 1 h RTO: backup-restore cannot work
    plan = {"size_bytes": 1e12, "change_rate": 1e5, "backup_throughput": 1e8,
            "restore_throughput": 1e6, "rto": 3600}  # fmt: skip
    r = c.post("/v1/dr/plan", json=plan, headers=h).json()
    tiers = {t["tier"]: t for t in r["tiers"]}
    assert tiers["backup-restore"]["feasible"] is False and tiers["backup-restore"]["reasons"]
    assert r["chosen"] != "backup-restore"
    day0 = datetime(2026, 1, 1, tzinfo=UTC)
    snaps = [{"id": f"s{i}", "time": (day0 + timedelta(days=i)).isoformat()} for i in range(10)]
    body = {"snapshots": snaps, "policy": {"keep_last": 3}}
    r = c.post("/v1/dr/retention/preview", json=body, headers=h).json()
    assert [k["id"] for k in r["keep"]] == ["s9", "s8", "s7"]
    assert sorted(s["id"] for s in r["remove"]) == [f"s{i}" for i in range(7)]
    empty = c.post("/v1/dr/retention/preview", json={"snapshots": snaps, "policy": {}}, headers=h)
    assert empty.status_code == 422 and "keeps nothing" in empty.json()["detail"]
    naive = {"snapshots": [{"id": "x", "time": "2026-01-01T00:00:00"}], "policy": {"keep_last": 1}}
    assert c.post("/v1/dr/retention/preview", json=naive, headers=h).status_code == 422


def test_backup_catalog_is_the_platforms(server_factory, tmp_path):
    from cognitionos.dr import BackupManager

    backups = tmp_path / "backups"
    server = server_factory(backup_dir=str(backups))
    c, h = server.client, bearer(server.root)
    assert c.get("/v1/dr/backups", headers=h).json()["items"] == []
    with BackupManager(server.state.settings.database_url, target=f"file://{backups}") as m:
        first = m.backup()
    items = c.get("/v1/dr/backups", headers=h).json()["items"]
    assert [b["id"] for b in items] == [first.id] and "cos_tenants" in items[0]["tables"]
    assert c.get(f"/v1/dr/backups/{first.id}", headers=h).json()["sha256"] == first.sha256
    assert c.get("/v1/dr/backups/nope", headers=h).status_code == 404
    status = c.get("/v1/dr/status", params={"rpo": 3600}, headers=h).json()
    assert status["backups"] == 1 and status["unverified"] == 1
    assert status["verified_older_than_rpo"] is True  # never restored: not verified
    _tid, owner = server.new_tenant("acme")
    assert c.get("/v1/dr/backups", headers=bearer(owner)).status_code == 403


def test_apm_ingest_latency_errors_slow_queries(server, monkeypatch):
    c, h = server.client, bearer(server.root)
    for i, seconds in enumerate([0.1, 0.2, 0.3, 0.4, 2.0]):
        body = otlp_trace("GET /orders/{id}", seconds, trace=i + 1)
        assert c.post("/v1/apm/traces", json=body, headers=h).status_code == 200
    c.post("/v1/apm/traces", json=otlp_trace("GET /fast", 0.001, trace=99), headers=h)
    rows = c.get("/v1/apm/latency", headers=h).json()["items"]
    assert [r["route"] for r in rows] == ["GET /orders/{id}", "GET /fast"]  # slowest p99 first
    orders = rows[0]
    assert orders["count"] == 5
    assert orders["p50"] == pytest.approx(0.3, rel=0.02)  # sketches are 1 % accurate
    assert orders["max"] == pytest.approx(2.0, rel=0.02)
    # two failures whose messages differ only in a number: one group
    for i, message in enumerate(["order 17 not found", "order 42 not found"]):
        body = otlp_trace("GET /orders/{id}", 0.1, trace=200 + i, error=("KeyError", message))
        assert c.post("/v1/apm/traces", json=body, headers=h).json()["errors"] == 1
    (group,) = c.get("/v1/apm/errors", headers=h).json()["items"]
    assert group["count"] == 2 and group["type"] == "KeyError"
    assert group["routes"] == ["GET /orders/{id}"] and len(group["trace_ids"]) == 2
    # one slow statement, and the same fast statement 6 times in one trace (N+1)
    n_plus_one = tuple((f"SELECT * FROM items WHERE id = {i}", 0.001) for i in range(6))
    body = otlp_trace("GET /cart", 0.5, trace=300,
                      statements=(("SELECT sum(x) FROM big", 0.4), *n_plus_one))  # fmt: skip
    assert c.post("/v1/apm/traces", json=body, headers=h).json()["statements"] == 7
    slow = {q["sql"]: q for q in c.get("/v1/apm/slow-queries", headers=h).json()["items"]}
    assert slow["SELECT sum(x) FROM big"]["slow_count"] == 1
    assert slow["SELECT * FROM items WHERE id = ?"]["n_plus_one_count"] >= 1
    # bounded: more spans than the route takes is refused whole
    from cognitionos.server._routes import apm

    monkeypatch.setattr(apm, "MAX_SPANS", 3)
    many = otlp_trace("GET /x", 0.1, trace=400, statements=(("SELECT 1", 0.0),) * 3)
    r = c.post("/v1/apm/traces", json=many, headers=h)
    assert r.status_code == 413 and "at most 3" in r.json()["detail"]
    bad = c.post("/v1/apm/traces", json={"resourceSpans": "x"}, headers=h)
    assert bad.status_code == 422


def test_heavy_work_runs_off_the_event_loop_and_is_bounded():
    """``offload`` runs in a worker thread, at most ``compute_workers`` at once."""
    import anyio

    from cognitionos.server._compute import offload

    state = SimpleNamespace(settings=SimpleNamespace(compute_workers=2), compute_limiter=None)
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(cognitionos=state)))
    running = 0
    peak = 0
    lock = threading.Lock()
    loop_thread: list[int] = []
    seen: list[int] = []

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            seen.append(threading.get_ident())
        threading.Event().wait(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(offload, request, work)  # type: ignore[arg-type]

    anyio.run(main)
    assert peak == 2 and len(seen) == 6
    assert loop_thread[0] not in seen


def test_compute_answers_are_json_even_when_numbers_are_not_finite():
    from cognitionos.server._compute import plain

    assert plain({"a": math.nan, "b": [math.inf, 1.5], "c": (1, "x")}) == {
        "a": None,
        "b": [None, 1.5],
        "c": [1, "x"],
    }
