"""Bad input raises cognitionos's own errors, naming the input; never a raw ValueError & co.

Each documented example has its own test; hypothesis then feeds garbage to every entry point
and accepts only a result or a :class:`~cognitionos.errors.CognitionError`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.errors import CognitionError, ConfigurationError
from cognitionos.flags import FlagEngine
from cognitionos.ratelimit import Limit, RateLimiter
from cognitionos.storage import open_async_store, open_store
from cognitionos.storage._open import check_url
from cognitionos.waf import Firewall, Request
from cognitionos.waf.blacklist import AutoBlacklist

# -- storage and limiter URLs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite:///:memory:?colour=blue", "['colour']"),
        ("redis://127.0.0.1:6379/0?colour=blue", "['colour']"),
        ("postgresql+psycopg://u@127.0.0.1:5432/db?colour=blue", "['colour']"),
        ("redis://127.0.0.1:6379/x", "'x'"),
        ("redis://127.0.0.1:6379/0/1", "'0/1'"),
        ("redis://127.0.0.1:6379/-1", "'-1'"),
        ("redis://127.0.0.1:6379/0?socket_timeout=soon", "'soon'"),
        ("sqlite://host/x", "'host'"),
        ("sqlite:///a\x00b.db", "NUL"),
        ("redis://\ud800/0", "'\\ud800'"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432", "no database name"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/", "no database name"),
        ("postgres://postgres@127.0.0.1/", "no database name"),
    ],
)
@pytest.mark.parametrize("opener", [open_store, open_async_store, RateLimiter])
def test_bad_urls_are_configuration_errors_naming_the_part(url, named, opener):
    with pytest.raises(ConfigurationError) as info:
        opener(url)
    assert named in str(info.value)
    assert "malformed storage URL" in str(info.value)


def test_rate_limiter_redis_url_prefix_is_refused_with_a_hint():
    with pytest.raises(ConfigurationError, match=r"prefix=\.\.\."):
        RateLimiter("redis://127.0.0.1:6379/0?prefix=app:")


def test_postgresql_url_with_dbname_option_is_accepted():
    assert check_url("postgresql+psycopg://u@h/?dbname=app").query == {"dbname": "app"}


def test_redis_url_options_redis_py_knows_are_accepted():
    check_url("redis://h:6379/2?socket_timeout=0.5&client_name=app&prefix=a:")
    check_url("rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem")


def test_relative_sqlite_path_that_cannot_open_names_the_absolute_path(tmp_path, monkeypatch):
    from cognitionos.errors import StorageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError) as info:
        open_store("sqlite:///no/such/dir/app.db")
    assert repr(str(tmp_path / "no/such/dir/app.db")) in str(info.value)


_URL_PARTS = st.sampled_from(
    ["memory://", "sqlite://", "sqlite:///", "redis://", "rediss://", "postgresql://", "x://", ""]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_URL_PARTS, st.text(max_size=40))
def test_garbage_urls_raise_only_cognition_errors(prefix, rest):
    try:
        check_url(prefix + rest)
    except CognitionError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_garbage_memory_urls_open_or_raise_cognition_errors(query):
    try:
        open_store("memory://?" + query).close()
    except CognitionError:
        pass


# -- rate limits ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.from_regex(r"\A\d{1,40}\s*(/|per)\s*\d{0,40}\s*\w{0,10}\Z"))
def test_garbage_limit_strings_raise_only_cognition_errors(text):
    try:
        Limit.parse(text)
    except CognitionError:
        pass


# -- flags ---------------------------------------------------------------------------------


def _nested(depth: int, op: str) -> dict[str, Any]:
    cond: dict[str, Any] = {"country": "NL"}
    for _ in range(depth):
        cond = {op: cond} if op == "$not" else {op: [cond]}
    return cond


@pytest.mark.parametrize("op", ["$and", "$or", "$nor", "$not"])
def test_conditions_nested_500_deep_are_refused_with_the_path(op):
    payload = {
        "features": {"deep": {"defaultValue": 1, "rules": [{"condition": _nested(500, op)}]}}
    }
    with pytest.raises(ConfigurationError, match=r"nested deeper than \d+ levels at \.features"):
        FlagEngine.from_growthbook(payload)


def test_conditions_nested_a_little_still_load():
    payload = {
        "features": {
            "ok": {"defaultValue": 1, "rules": [{"condition": _nested(20, "$and"), "force": 2}]}
        }
    }
    assert FlagEngine.from_growthbook(payload).evaluate("ok", {"country": "NL"}).value == 2


@pytest.mark.parametrize("loader", ["from_growthbook", "from_unleash", "from_flagd", "from_json"])
@pytest.mark.parametrize("text", ["not json", "{", '{"a": [1,]}', "[" * 100_000, b"\xff\xfe"])
def test_payloads_that_are_not_json_are_configuration_errors(loader, text):
    with pytest.raises(ConfigurationError) as info:
        getattr(FlagEngine, loader)(text)
    assert "payload" in str(info.value) or "flag set" in str(info.value)


def test_unleash_variant_weight_x_names_the_variant():
    doc = {
        "version": 1,
        "features": [
            {
                "name": "f",
                "enabled": True,
                "strategies": [{"name": "default"}],
                "variants": [{"name": "blue", "weight": "x"}],
            }
        ],
    }
    with pytest.raises(ConfigurationError, match=r"'f' variant 'blue': weight 'x'"):
        FlagEngine.from_unleash(doc, strict=True)
    # lenient loading (the default) keeps the engine up: only this flag answers PARSE_ERROR
    result = FlagEngine.from_unleash(doc).evaluate("f", {}, default=False)
    assert result.error_code is not None and result.error_code.name == "PARSE_ERROR"
    assert "weight 'x'" in (result.error_message or "")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
_KEYS = st.sampled_from(
    [
        "features",
        "flags",
        "rules",
        "condition",
        "variants",
        "weight",
        "weights",
        "strategies",
        "defaultValue",
        "state",
        "defaultVariant",
        "targeting",
        "name",
        "enabled",
        "force",
        "variations",
        "coverage",
        "$and",
        "$or",
        "$in",
        "$regex",
        "fractional",
        "key",
    ]
)
_SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["from_growthbook", "from_unleash", "from_flagd", "from_json"]), _JSON | _SHAPED
)
def test_garbage_flag_documents_raise_only_cognition_errors(loader, doc):
    try:
        engine = getattr(FlagEngine, loader)(doc)
    except CognitionError:
        return
    for key in list(engine.keys)[:5]:
        engine.evaluate(key, {"id": "u"})


# -- WAF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, 1e300, 0, -1, "x", True])
def test_absurd_ban_durations_are_configuration_errors(seconds):
    bl = AutoBlacklist(open_store("memory://"))
    with pytest.raises(ConfigurationError, match="ban duration"):
        bl.ban("203.0.113.9", seconds=seconds)


def test_invalid_ip_to_ban_is_named():
    bl = AutoBlacklist(open_store("memory://"))
    with pytest.raises(ConfigurationError, match="'not-an-ip'"):
        bl.ban("not-an-ip")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"method": None, "target": "/"}, "method"),
        ({"method": "GET", "target": 5}, "target"),
        ({"method": "GET", "target": "/", "headers": [("a",)]}, "headers"),
        ({"method": "GET", "target": "/", "headers": None}, "headers"),
        ({"method": "GET", "target": "/", "body": 5}, "body"),
        ({"method": "GET", "target": "/", "client_ip": 7}, "client_ip"),
    ],
)
def test_request_from_raw_names_the_bad_argument(kwargs, named):
    with pytest.raises(ConfigurationError, match=named):
        Request.from_raw(**kwargs)


@pytest.mark.parametrize("threshold", ["x", 0, 2.5, None, True])
def test_firewall_threshold_must_be_a_positive_integer(threshold):
    with pytest.raises(ConfigurationError, match="threshold"):
        Firewall(threshold=threshold)


def test_inspect_value_refuses_bytes():
    with pytest.raises(ConfigurationError, match="bytes"):
        Firewall().inspect_value(b"' or 1=1--")  # type: ignore[arg-type]


_FW = Firewall()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=10),
    st.text(max_size=60),
    st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=5),
    st.binary(max_size=80) | st.text(max_size=80),
    st.none() | st.text(max_size=20),
)
def test_garbage_requests_are_inspected_or_refused(method, target, headers, body, client_ip):
    try:
        req = Request.from_raw(method, target, headers=headers, body=body, client_ip=client_ip)
    except CognitionError:
        return
    _FW.inspect(req)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.floats(allow_nan=True) | st.integers())
def test_garbage_bans_raise_only_cognition_errors(client, seconds):
    bl = AutoBlacklist(open_store("memory://"))
    try:
        bl.ban(client, seconds=seconds)
    except CognitionError:
        pass
    try:
        bl.unban(client)
    except CognitionError:
        pass


def test_json_shaped_documents_round_trip_through_the_depth_check():
    from cognitionos.flags._input import check_depth

    check_depth(json.loads("[" * 100 + "]" * 100), "doc")
    with pytest.raises(ConfigurationError, match=r"nested deeper than 100 levels"):
        check_depth(json.loads("[" * 101 + "]" * 101), "doc")


# -- WAF configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "named"),
    [
        ("rules.json", "not json", "not valid JSON"),
        ("rules.json", "{" * 100_000, "rules.json"),
        ("rules.json", '{"rules": 5}', "must be a list"),
        ("rules.json", '{"rules": "abc"}', "must be a list"),
    ],
)
def test_bad_rule_files_are_configuration_errors_naming_the_file(tmp_path, name, text, named):
    from cognitionos.waf.rules import load_rules

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=named):
        load_rules(path)


def test_missing_rule_file_names_the_path(tmp_path):
    from cognitionos.waf.rules import load_rules

    with pytest.raises(ConfigurationError, match=r"nope\.json"):
        load_rules(tmp_path / "nope.json")


@pytest.mark.parametrize("value", ["x", -1, 0, 2.5, None])
def test_parse_limits_must_be_positive_integers(value):
    from cognitionos.waf import ParseLimits

    with pytest.raises(ConfigurationError, match=r"ParseLimits\.max_headers"):
        ParseLimits(max_headers=value)


def test_disabled_rules_must_be_a_list():
    with pytest.raises(ConfigurationError, match="disabled_rules"):
        Firewall(disabled_rules=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"threshold": "x"}, {"window": math.inf}, {"ban_seconds": math.nan}]
)
def test_blacklist_settings_are_checked(kwargs):
    with pytest.raises(ConfigurationError):
        AutoBlacklist(open_store("memory://"), **kwargs)


def test_native_flag_definitions_nested_too_deep_are_refused():
    flag = {"key": "deep", "default_value": 1, "rules": [{"condition": _nested(500, "$and")}]}
    with pytest.raises(ConfigurationError, match=r"nested deeper than 100 levels at \.flags\[0\]"):
        FlagEngine.from_json({"flags": [flag]})


def test_cli_flag_definition_nested_too_deep_is_one_line(tmp_path):
    from click.testing import CliRunner

    from cognitionos.cli import main

    rule = {"condition": _nested(300, "$or"), "value": 2}
    definition = json.dumps({"default_value": 1, "rules": [rule]})
    store = f"sqlite:///{tmp_path / 'f.db'}"
    result = CliRunner().invoke(
        main, ["flags", "--store", store, "set", "deep", "--definition", definition]
    )
    assert result.exit_code == 1
    assert "flag 'deep'" in result.stderr and "nested deeper than 100" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("store", [5, object(), b"sqlite://"])
def test_flag_engine_store_must_be_a_url_or_a_store(store):
    with pytest.raises(ConfigurationError, match="FlagEngine store must be a storage URL"):
        FlagEngine(store=store)
