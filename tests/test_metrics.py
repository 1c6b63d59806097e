"""Engine counters and their Prometheus collector."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest

from cognitionos.integrations.prometheus import EngineCollector
from cognitionos.metrics import CounterSet


def test_counts_and_snapshot():
    cs = CounterSet("demo", ("allowed", "refused"), help={"allowed": "Admitted"})
    bump = cs.incrementer("allowed")
    bump()
    bump()
    cs.inc("refused")
    assert cs.snapshot() == {"allowed": 2, "refused": 1}
    assert cs.snapshot() == {"allowed": 2, "refused": 1}  # reading does not advance


def test_add_counts_many_at_once_and_refuses_bad_amounts():
    import pytest

    from cognitionos.errors import ConfigurationError

    cs = CounterSet("demo", ("sent",))
    cs.add("sent", 512)
    cs.add("sent", 0)
    cs.inc("sent")
    assert cs.snapshot() == {"sent": 513}
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError, match="increments"):
            cs.add("sent", bad)


def test_merged_sums_plain_and_labelled_counters():
    a = CounterSet("flags", ("reload_errors",))
    b = CounterSet("flags", ("reload_errors", "invalid"))
    a.add("reload_errors", 2)
    b.add("reload_errors", 3)
    b.inc("invalid")
    fa = a.labelled("evaluations", "flag", "variant")
    fb = b.labelled("evaluations", "flag", "variant")
    for _ in range(4):
        fa.inc(("beta", "on"))
    fb.inc(("beta", "on"))
    fb.inc(("beta", "off"))
    merged = CounterSet.merged("flags", [a, b], names=("never_used",))
    assert merged.snapshot() == {"never_used": 0, "reload_errors": 5, "invalid": 1}
    assert merged.families()["evaluations"].snapshot() == {("beta", "on"): 5, ("beta", "off"): 1}
    assert a.snapshot() == {"reload_errors": 2}  # the sources are not changed
    assert CounterSet.merged("flags", [], names=("x",)).snapshot() == {"x": 0}


def test_no_lost_increments_across_threads():
    cs = CounterSet("demo", ("hits",))
    family = cs.labelled("evals", "flag", "variant")
    bump = cs.incrementer("hits")

    def work():
        for i in range(20_000):
            bump()
            family.inc(("f", str(i % 2)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cs.snapshot()["hits"] == 80_000
    assert family.snapshot() == {("f", "0"): 40_000, ("f", "1"): 40_000}


def test_collector_on_own_registry():
    cs = CounterSet("ratelimit", ("refused",), help={"refused": "Refused requests"})
    cs.inc("refused")
    cs.labelled("evaluations", "flag", help="Flag evaluations").inc(("checkout",))
    registry = CollectorRegistry()
    registry.register(EngineCollector(cs))
    text = generate_latest(registry).decode()
    assert "cognitionos_ratelimit_refused_total 1.0" in text
    assert "# HELP cognitionos_ratelimit_refused_total Refused requests" in text
    assert 'cognitionos_ratelimit_evaluations_total{flag="checkout"} 1.0' in text
    cs.inc("refused")
    assert "cognitionos_ratelimit_refused_total 2.0" in generate_latest(registry).decode()
