"""Error grouping, slow queries and fleet-wide latency kept in every store backend; the CLI."""

from __future__ import annotations

import json
import math
import random
import threading
import uuid

import pytest
from click.testing import CliRunner

from cognitionos.apm import (
    OVERFLOW_ROUTE,
    ErrorGrouper,
    LatencyRecorder,
    LatencySketch,
    SlowQueryDetector,
    normalize_message,
    normalize_sql,
    read_route_latencies,
    read_slow_queries,
    summarize,
)
from cognitionos.cli import main
from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError


def fresh() -> str:
    """A namespace of its own: PostgreSQL and Redis keep data between runs."""
    return f"t{uuid.uuid4().hex[:12]}"


# -- message and SQL normalization -------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("order 42 not found", "order <num> not found"),
        ("user 7f3c2a10-1b2c-4d5e-8f90-0123456789ab gone", "user <uuid> gone"),
        ("mail bob.smith+x@example.co.uk bounced", "mail <email> bounced"),
        ("connect to 10.0.12.7 refused", "connect to <ip> refused"),
        ("peer 2001:db8::1 reset", "peer <ip> reset"),
        ("object at 0x7f9a3c2b1d00 is dead", "object at <hex> is dead"),
        ("commit deadbeef12 missing", "commit <hex> missing"),
        ("no key 'sku-991' in cache", "no key <str> in cache"),
        ('bad value "abc" for field', "bad value <str> for field"),
        ("took 1.5e3 ms, limit -20", "took <num> ms, limit <num>"),
        ("  spaced \n  out  ", "spaced out"),
    ],
)
def test_normalize_message(message, expected):
    assert normalize_message(message) == expected


def test_words_that_look_hexish_are_kept():
    # a run of letters a-f without digits is a word, not an id
    assert normalize_message("facade decade") == "facade decade"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select * from t where id = 42", "SELECT * FROM t WHERE id = ?"),
        ("SELECT a FROM t WHERE name = 'o''brien' -- who\n", "SELECT a FROM t WHERE name = ?"),
        ("select a from t where id in (1, 2, 3)", "SELECT a FROM t WHERE id IN (?)"),
        ("select a from t where id in (%s, %s)", "SELECT a FROM t WHERE id IN (?)"),
        ("select a from t where x = :x and y = $1", "SELECT a FROM t WHERE x = ? AND y = ?"),
        ("insert into t (a, b) values (1, 'x'), (2, 'y')", "INSERT INTO t (a, b) VALUES (?, ?)"),
        ("select /* hint */ col1 from t2", "SELECT col1 FROM t2"),
    ],
)
def test_normalize_sql(sql, expected):
    assert normalize_sql(sql) == expected


# -- error grouping ----------------------------------------------------------------------------


def _raise_lookup(order_id):
    raise KeyError(f"order {order_id} missing")


def _raise_other(order_id):
    raise KeyError(f"order {order_id} missing")


def _catch(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def test_same_failure_with_other_ids_groups_together():
    grouper = ErrorGrouper(in_app=("tests",))
    a = _catch(_raise_lookup, 1)
    b = _catch(_raise_lookup, 982)
    c = _catch(_raise_other, 1)  # same type and message, other function: another group
    d = KeyError("order 1 missing")  # never raised: no frames
    assert grouper.fingerprint(a) == grouper.fingerprint(b)
    assert grouper.fingerprint(a) != grouper.fingerprint(c)
    assert grouper.fingerprint(a) != grouper.fingerprint(d)
    assert grouper.frames(a)[-1] == "tests.apm.test_fleet._raise_lookup"
    assert grouper.frames(d) == []


def test_without_in_app_frames_all_frames_are_used():
    grouper = ErrorGrouper(in_app=("nowhere",))
    exc = _catch(json.loads, "{")
    frames = grouper.frames(exc)
    assert any(f.startswith("json.") for f in frames)


def test_default_in_app_excludes_the_standard_library():
    grouper = ErrorGrouper()

    def here():
        json.loads("{")

    frames = grouper.frames(_catch(here))
    assert frames == [
        "tests.apm.test_fleet._catch",
        "tests.apm.test_fleet.here",
    ]


def test_group_bookkeeping_in_memory():
    clock = ManualClock(start=1_700_000_000)
    grouper = ErrorGrouper(in_app=("tests",), clock=clock, max_samples=2)
    for i in range(4):
        clock.advance(10)
        grouper.record(_catch(_raise_lookup, i), trace_id=i + 1, route="GET /orders/{id}")
    grouper.record(_catch(_raise_other, 5), route="POST /orders")
    first, second = grouper.groups()
    assert first.count == 4
    assert first.first_seen_ns == (1_700_000_000 + 10) * 10**9
    assert first.last_seen_ns == (1_700_000_000 + 40) * 10**9
    assert first.trace_ids == (f"{1:032x}", f"{2:032x}")
    assert first.routes == ("GET /orders/{id}",)
    assert first.message == "<str>" or "order <num> missing" in first.message
    assert first.culprit == "tests.apm.test_fleet._raise_lookup"
    assert second.count == 1


def test_error_groups_merge_across_processes_in_the_store(store):
    # two groupers on one store stand for two worker processes
    ns = fresh()
    one = ErrorGrouper(store, in_app=("tests",), namespace=ns)
    two = ErrorGrouper(store, in_app=("tests",), namespace=ns)
    threads = [
        threading.Thread(
            target=lambda g=g: [g.record(_catch(_raise_lookup, i), route="r") for i in range(10)]
        )
        for g in (one, two, one, two)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (group,) = one.groups()
    assert group.count == 40
    assert two.groups() == [group]


def test_grouper_refuses_bad_input():
    with pytest.raises(ConfigurationError, match="in_app"):
        ErrorGrouper(in_app="tests")
    with pytest.raises(ConfigurationError, match="exception"):
        ErrorGrouper().fingerprint("boom")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="store"):
        ErrorGrouper(store=object())
    with pytest.raises(ConfigurationError, match="namespace"):
        ErrorGrouper(namespace="a:b")


# -- slow queries ------------------------------------------------------------------------------


def test_slow_and_n_plus_one_detection():
    det = SlowQueryDetector(threshold=0.1, n_plus_one=3)
    assert det.observe("select * from a where id = 1", 0.5) is True
    assert det.observe("select * from a where id = 2", 0.01) is False
    with det.request("GET /orders"):
        for i in range(5):
            det.observe(f"select * from items where order_id = {i}", 0.001)
        det.observe("select * from users where id = 9", 0.001)
    rows = {r.sql: r for r in det.report()}
    slow = rows["SELECT * FROM a WHERE id = ?"]
    assert (slow.count, slow.slow_count, slow.n_plus_one_count) == (2, 1, 0)
    assert slow.max == 0.5
    assert slow.locations[0].startswith(__file__)
    n1 = rows["SELECT * FROM items WHERE order_id = ?"]
    assert (n1.count, n1.n_plus_one_count, n1.routes) == (5, 1, ("GET /orders",))
    assert n1.locations[0].startswith(__file__ + ":")
    assert "SELECT * FROM users WHERE id = ?" not in rows


def test_sqlalchemy_hooks_find_n_plus_one_and_ignore_fetches(tmp_path):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    det = SlowQueryDetector(threshold=10.0, n_plus_one=4)
    remove = det.instrument(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table items (id integer primary key, order_id integer)")
        conn.exec_driver_sql("insert into items (order_id) values (1), (2), (3), (4), (5)")
    with det.request("GET /orders"), engine.connect() as conn:
        result = conn.execution_options(stream_results=True).exec_driver_sql("select * from items")
        rows = [result.fetchone() for _ in range(5)]  # fetches are not statements
        assert len(rows) == 5
        for order_id in range(1, 6):
            conn.execute(
                sqlalchemy.text("select id from items where order_id = :o"), {"o": order_id}
            )
    remove()
    found = {r.sql: r for r in det.report()}
    (shape,) = [s for s in found if "order_id = ?" in s]
    assert found[shape].n_plus_one_count == 1
    assert found[shape].count == 5
    assert found[shape].locations[0].startswith(__file__)
    assert "SELECT * FROM items" not in found


def test_slow_queries_merge_in_the_store(store):
    ns = fresh()
    for _ in range(2):  # two processes
        det = SlowQueryDetector(store, threshold=0.1, namespace=ns)
        det.observe("select * from big where x = 1", 0.2)
        det.observe("select * from big where x = 2", 0.4)
        assert det.flush() == 1
    (row,) = read_slow_queries(store, namespace=ns)
    assert read_slow_queries(store, namespace=fresh()) == []
    assert row.count == 4
    assert row.slow_count == 4
    assert abs(row.max - 0.4) < 1e-12
    assert abs(row.p99 - 0.4) <= 0.004


# -- fleet latency -----------------------------------------------------------------------------


def test_fleet_percentiles_equal_those_of_all_requests(store):
    clock = ManualClock(start=1_700_000_000)
    rng = random.Random(3)
    everything: list[float] = []
    ns = fresh()
    workers = [LatencyRecorder(store, window=60, clock=clock, namespace=ns) for _ in range(4)]
    for _minute in range(3):
        for w in workers:
            for _ in range(200):
                v = rng.lognormvariate(-4, 1)
                everything.append(v)
                w.record("GET /orders/{id}", v)
        for w in workers:
            w.flush()
        clock.advance(60)
    merged = read_route_latencies(store, namespace=ns)
    whole = LatencySketch()
    whole.add_many(everything)
    assert merged["GET /orders/{id}"] == whole
    (row,) = summarize(merged)
    ordered = sorted(everything)
    for q, got in ((0.5, row.p50), (0.99, row.p99), (0.999, row.p999)):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        assert abs(got - exact) <= 0.01 * exact * (1 + 1e-9)
    # a time range picks windows: only the last minute
    last = read_route_latencies(store, since=1_700_000_000 + 121, namespace=ns)
    assert last["GET /orders/{id}"].count == 800


def test_route_cardinality_is_capped():
    rec = LatencyRecorder(max_routes=2)
    for route in ("a", "b", "c", "d", "a"):
        rec.record(route, 0.1)
    local = rec.local()
    assert set(local) == {"a", "b", OVERFLOW_ROUTE}
    assert local[OVERFLOW_ROUTE].count == 2
    assert rec.counters.snapshot()["overflow"] == 2


def test_recorder_refuses_bad_input():
    with pytest.raises(ConfigurationError, match="window"):
        LatencyRecorder(window=0)
    with pytest.raises(ConfigurationError, match="relative_accuracy"):
        LatencyRecorder(relative_accuracy=2)
    with pytest.raises(ConfigurationError, match="finite"):
        LatencyRecorder().record("r", float("nan"))


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_reads_what_the_engines_wrote(tmp_path, monkeypatch):
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    url = f"sqlite:///{tmp_path / 'apm.db'}"
    rec = LatencyRecorder(url)
    for v in (0.010, 0.020, 0.030, 0.400):
        rec.record("GET /slow", v)
    rec.record("GET /fast", 0.001)
    rec.close()
    grouper = ErrorGrouper(url, in_app=("tests",))
    grouper.record(_catch(_raise_lookup, 3), route="GET /slow")
    grouper.close()
    det = SlowQueryDetector(url, threshold=0.05)
    det.observe("select * from t where id = 5", 0.2)
    det.close()

    runner = CliRunner()
    out = runner.invoke(main, ["apm", "top", "--store", url, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [r["route"] for r in data["routes"]] == ["GET /slow", "GET /fast"]
    assert data["routes"][0]["count"] == 4
    assert abs(data["routes"][0]["max"] - 0.4) < 1e-12
    assert data["errors"][0]["type"] == "KeyError"
    text = runner.invoke(main, ["apm", "--store", url, "top"])
    assert text.exit_code == 0 and "GET /slow" in text.stdout
    errs = json.loads(runner.invoke(main, ["apm", "errors", "--store", url, "--json"]).stdout)
    assert errs[0]["count"] == 1 and errs[0]["routes"] == ["GET /slow"]
    slow = json.loads(runner.invoke(main, ["apm", "slow-queries", "--store", url, "--json"]).stdout)
    assert slow[0]["sql"] == "SELECT * FROM t WHERE id = ?"
    plain = runner.invoke(main, ["apm", "slow-queries", "--store", url])
    assert "SELECT * FROM t WHERE id = ?" in plain.stdout


def test_cli_bad_store_is_one_line():
    out = CliRunner().invoke(main, ["apm", "top", "--store", "nope://x"])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    assert "nope" in out.output
