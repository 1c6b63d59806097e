"""One CLI convention for every group (DESIGN.md "CLI conventions"), checked with CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.cli import main


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    monkeypatch.delenv("COGNITIONOS_FLAGS_STORE", raising=False)
    return CliRunner()


def _ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def _flag_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": [{"key": "beta", "default_value": True}]}))
    return path


def test_every_group_shares_one_default_file(runner, tmp_path, monkeypatch):
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    if True:
        _ok(runner.invoke(main, ["waf", "ban", "203.0.113.9"]))
        _ok(runner.invoke(main, ["ratelimit", "ban", "ip:203.0.113.9"]))
        _ok(runner.invoke(main, ["flags", "import", str(_flag_file(tmp_path))]))
        assert sorted(p.name for p in cwd.glob("*.db")) == ["cognitionos.db"]
        assert "203.0.113.9" in _ok(runner.invoke(main, ["waf", "bans"])).stdout
        assert "ip:203.0.113.9" in _ok(runner.invoke(main, ["ratelimit", "bans"])).stdout
        assert "beta" in _ok(runner.invoke(main, ["flags", "list"])).stdout
        _ok(runner.invoke(main, ["store", "check"]))
        _ok(runner.invoke(main, ["db", "upgrade"]))


def test_one_env_var_names_the_store_for_every_group(runner, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("COGNITIONOS_STORE", url)
    _ok(runner.invoke(main, ["waf", "ban", "198.51.100.7"]))
    _ok(runner.invoke(main, ["ratelimit", "ban", "k1"]))
    _ok(runner.invoke(main, ["flags", "import", str(_flag_file(tmp_path))]))
    monkeypatch.delenv("COGNITIONOS_STORE")
    opts = ["--store", url, "--json"]
    assert json.loads(_ok(runner.invoke(main, ["waf", "bans", *opts])).stdout)[0]["key"] == (
        "198.51.100.7"
    )
    assert json.loads(_ok(runner.invoke(main, ["ratelimit", "bans", *opts])).stdout)[0]["key"] == (
        "k1"
    )
    assert json.loads(_ok(runner.invoke(main, ["flags", "list", *opts])).stdout)[0]["key"] == (
        "beta"
    )


@pytest.mark.parametrize("group", ["waf", "ratelimit"])
def test_ban_commands_are_shaped_alike(group):
    from cognitionos.cli import BUILTIN_COMMANDS, LazyGroup

    command = LazyGroup(lazy=BUILTIN_COMMANDS).get_command(None, group)  # type: ignore[arg-type]
    assert command is not None
    subs = command.commands  # type: ignore[attr-defined]
    assert {"ban", "unban", "bans"} <= set(subs)

    def options(name: str) -> set[str]:
        return {o for p in subs[name].params if not getattr(p, "hidden", False) for o in p.opts}

    assert {"--store", "--seconds", "--json"} <= options("ban")
    assert "--store" in options("unban")
    assert {"--store", "--json"} <= options("bans")


def _scan_file(tmp_path: Path) -> Path:
    path = tmp_path / "reqs.jsonl"
    path.write_text(
        "\n".join(json.dumps({"payload": p}) for p in ["hello", "' or 1=1--", "<script>x</script>"])
    )
    return path


LISTINGS = [
    ["waf", "bans"],
    ["ratelimit", "bans"],
    ["ratelimit", "check", "5/minute", "k"],
    ["flags", "list"],
    ["flags", "audit"],
    ["flags", "stale"],
    ["store", "check", "--samples", "2"],
]


@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("store", ["memory://", "sqlite"])
def test_json_output_is_only_json_on_stdout(runner, tmp_path, args, store):
    url = store if store == "memory://" else f"sqlite:///{tmp_path / 'j.db'}"
    result = runner.invoke(main, [*args, "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the whole of stdout is one JSON document
    if store == "memory://":
        assert "nothing is kept" in result.stderr


def test_explain_json_is_only_json(runner):
    result = _ok(runner.invoke(main, ["waf", "explain", "' or 1=1--", "--json"]))
    doc = json.loads(result.stdout)
    assert doc["blocked"] is True and doc["steps"] and doc["matches"]


def test_scan_json_is_one_document_with_the_summary_on_stderr(runner, tmp_path):
    result = _ok(runner.invoke(main, ["waf", "scan", str(_scan_file(tmp_path)), "--json"]))
    doc = json.loads(result.stdout)
    assert [r["blocked"] for r in doc["requests"]] == [False, True, True]
    assert doc["summary"]["requests"] == 3 and doc["summary"]["blocked"] == 2
    assert "3 requests, 2 blocked" in result.stderr


@pytest.mark.parametrize(
    ("args", "empty"),
    [
        (["waf", "bans"], "no bans"),
        (["ratelimit", "bans"], "no bans"),
        (["flags", "list"], "no flags"),
        (["flags", "audit"], "no audit events"),
        (["flags", "stale"], "no stale flags"),
    ],
)
def test_empty_listings_say_so(runner, tmp_path, args, empty):
    result = _ok(runner.invoke(main, [*args, "--store", f"sqlite:///{tmp_path / 'e.db'}"]))
    assert empty in result.stdout


def test_memory_store_warns_that_nothing_persists(runner):
    result = _ok(runner.invoke(main, ["waf", "ban", "203.0.113.9", "--store", "memory://"]))
    assert "warning: memory:// lives only as long as this command" in result.stderr
    assert "warning" not in result.stdout


def test_relative_sqlite_path_names_the_absolute_path_tried(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["waf", "bans", "--store", "sqlite:///missing/dir/x.db"])
    assert result.exit_code == 1
    assert str(tmp_path / "missing/dir/x.db") in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["waf", "ban", "not-an-ip"], "'not-an-ip'"),
        (["waf", "bans", "--ban", "not-an-ip"], "'not-an-ip'"),
        (["ratelimit", "check", "lots", "k"], "'lots'"),
        (["ratelimit", "bans", "--store", "redis://127.0.0.1:6379/x"], "got 'x'"),
        (["flags", "--store", "sqlite://host/x", "list"], "'host'"),
        (["store", "check", "--store", "postgresql://u@127.0.0.1:5432/"], "no database name"),
        (["ratelimit", "ban", "k", "--seconds", "inf"], "'--seconds': 'inf' is not a finite"),
        (["ratelimit", "ban", "k", "--seconds", "1e300"], "ban duration 1e+300"),
        (["waf", "ban", "203.0.113.9", "--seconds", "inf"], "'--seconds': 'inf' is not a finite"),
        (["flags", "import", "deep.json"], "deep.json: JSON nested too deeply"),
        (["flags", "import", "binary.json"], "binary.json is not UTF-8"),
        (["flags", "import", "deep.json", "--format", "unleash"], "nested too deeply"),
        (["flags", "set", "x", "--file", "deep.json"], "deep.json: JSON nested too deeply"),
        (["flags", "set", "x", "--definition", "[1]"], "must be a JSON object"),
        (["flags", "set", "x", "--default", "nope"], "--default is not valid JSON"),
    ],
)
def test_errors_are_one_line_naming_the_input(runner, tmp_path, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.json").write_text("[" * 100_000)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    result = runner.invoke(main, args)
    # a value the option's type refuses is click's usage error (2); the rest are ours (1)
    assert result.exit_code == (2 if "is not a finite" in named else 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('{"payload": "ok"}\n{"payload": \n', "reqs.jsonl:2: not JSON"),
        ('{"payload": "ok"}\n[1, 2]\n', "reqs.jsonl:2: expected a JSON object"),
        ('{"uri": "/", "headers": [["a"]]}\n', "reqs.jsonl:1: headers"),
        ('{"uri": "/", "body": 5}\n', "reqs.jsonl:1: body"),
        ('{"nothing": 1}\n', "reqs.jsonl:1: line has neither"),
    ],
)
def test_malformed_scan_lines_name_the_line(runner, tmp_path, content, named):
    path = tmp_path / "reqs.jsonl"
    path.write_text(content)
    result = runner.invoke(main, ["waf", "scan", str(path)])
    assert result.exit_code == 1
    assert named in result.stderr
    assert "Traceback" not in result.output


def test_scan_reports_progress_on_stderr(runner, tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps({"payload": f"v{i}"}) for i in range(50)))
    result = _ok(runner.invoke(main, ["waf", "scan", str(path), "--json", "--progress"]))
    assert "scanned: 50/50 (100%" in result.stderr
    assert "scanned" not in result.stdout
    json.loads(result.stdout)


def test_scan_fail_on_block_exits_1(runner, tmp_path):
    result = runner.invoke(main, ["waf", "scan", str(_scan_file(tmp_path)), "--fail-on-block"])
    assert result.exit_code == 1


def test_old_spellings_still_work_with_a_note(runner, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    banned = _ok(runner.invoke(main, ["ratelimit", "ban", url, "k", "60"]))
    assert "deprecated: give the store as --store" in banned.stderr
    listed = _ok(runner.invoke(main, ["ratelimit", "bans", url, "--json"]))
    assert json.loads(listed.stdout)[0]["key"] == "k"
    checked = runner.invoke(main, ["ratelimit", "check", url, "1/minute", "k"])
    assert checked.exit_code == 1 and "banned" in checked.stdout
    _ok(runner.invoke(main, ["store", "check", url, "--samples", "1"]))
    monkeypatch.setenv("COGNITIONOS_FLAGS_STORE", url)
    flags = _ok(runner.invoke(main, ["flags", "list"]))
    assert "set $COGNITIONOS_STORE instead" in flags.stderr


def test_unwritable_output_file_is_one_line(runner, tmp_path):
    store = f"sqlite:///{tmp_path / 'o.db'}"
    target = tmp_path / "no" / "such" / "dir" / "flags.json"
    result = runner.invoke(main, ["flags", "--store", store, "export", "-o", str(target)])
    assert result.exit_code == 1
    assert str(target) in result.stderr and "Traceback" not in result.output


_TEXT = st.text(max_size=24)
_NUMBER = st.sampled_from(["0", "-1", "1e300", "inf", "nan", "x", "", "600", "1" * 40])
_RELATIVE = st.text(max_size=16).map(lambda s: "sqlite:///" + s.lstrip("/"))
_STORE = st.sampled_from(["memory://"]) | _RELATIVE | _TEXT.map(lambda s: "memory://?" + s)
_INVOCATIONS = st.one_of(
    st.tuples(st.just(["waf", "ban"]), _TEXT, st.just("--seconds"), _NUMBER),
    st.tuples(st.just(["waf", "unban"]), _TEXT),
    st.tuples(st.just(["waf", "explain"]), _TEXT),
    st.tuples(st.just(["ratelimit", "check"]), _TEXT, _TEXT),
    st.tuples(st.just(["ratelimit", "ban"]), _TEXT, st.just("--seconds"), _NUMBER),
    st.tuples(st.just(["ratelimit", "unban"]), _TEXT),
    st.tuples(st.just(["flags", "set"]), _TEXT, st.just("--definition"), _TEXT),
    st.tuples(st.just(["flags", "set"]), _TEXT, st.just("--default"), _TEXT),
    st.tuples(st.just(["flags", "get"]), _TEXT),
    st.tuples(st.just(["flags", "toggle"]), _TEXT, st.just("--off")),
    st.tuples(st.just(["flags", "stale", "--days"]), _NUMBER),
    st.tuples(st.just(["waf", "bans"])),
    st.tuples(st.just(["store", "check", "--samples", "1"])),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_INVOCATIONS, _STORE)
def test_garbage_arguments_never_escape_as_tracebacks(tmp_path, monkeypatch, invocation, store):
    monkeypatch.chdir(tmp_path)  # relative SQLite files land here
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    head, *rest = invocation
    args = [*head, *rest]
    if "\x00" in "".join(args):
        return  # the OS cannot pass a NUL in an argument; click would not see one either
    result = CliRunner().invoke(main, [*args, "--store", store])
    assert result.exit_code in (0, 1, 2), (args, store, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        store,
        repr(result.exception),
    )
    assert "Traceback" not in result.output


def test_admin_groups_follow_the_conventions(runner, tmp_path):
    """tenant/user/key take --store and --json like every group (their store: a SQL database)."""
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    store = f"sqlite:///{tmp_path / 'admin.db'}"
    assert "no tenants" in _ok(runner.invoke(main, ["tenant", "list", "--store", store])).stdout
    made = _ok(runner.invoke(main, ["tenant", "create", "acme", "--store", store, "--json"]))
    doc = json.loads(made.stdout)  # only JSON on stdout, notes on stderr
    assert "created" in made.stderr and doc["owner_key"]["token"].startswith("cos_live_")
    tid = doc["tenant_id"]
    for args in (["tenant", "list"], ["user", "list", "--tenant", tid],
                 ["key", "list", "--tenant", tid]):  # fmt: skip
        result = _ok(runner.invoke(main, [*args, "--store", store, "--json"]))
        assert isinstance(json.loads(result.stdout), list)
    from cognitionos.cli import BUILTIN_COMMANDS, LazyGroup

    group = LazyGroup(lazy=BUILTIN_COMMANDS)
    for name in ("tenant", "user", "key"):
        command = group.get_command(None, name)  # type: ignore[arg-type]
        for sub in command.commands.values():  # type: ignore[union-attr]
            opts = {o for p in sub.params for o in p.opts}
            assert {"--store", "--url", "--key"} <= opts, (name, sub.name)
            if sub.name in ("list", "create", "rotate"):
                assert "--json" in opts, (name, sub.name)


def _commands(group, path=()):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # groups load their commands lazily
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def test_the_command_walk_sees_every_group():
    paths = {path for path, _cmd in _commands(main)}
    assert {("autoscale", "recommend"), ("dr", "plan"), ("pricing", "optimal-price")} <= paths
    assert len(paths) > 60


def test_no_numeric_option_takes_a_plain_float():
    # click's FLOAT accepts nan and inf, which then reach arithmetic as a traceback
    import click

    plain = [
        f"{' '.join(path)} {p.name}"
        for path, cmd in _commands(main)
        for p in cmd.params
        if isinstance(p.type, click.types.FloatParamType)
    ]
    assert plain == []


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999"])
def test_every_float_option_refuses_non_finite_values(runner, tmp_path, bad):
    import click

    from cognitionos._cli_common import FiniteFloat

    checked = 0
    for path, cmd in _commands(main):
        for p in cmd.params:
            if not isinstance(p.type, FiniteFloat):
                continue
            ctx = cmd.make_context(" ".join(path), [], resilient_parsing=True)
            with pytest.raises(click.BadParameter, match="finite") as info:
                p.type.convert(bad, p, ctx)
            assert "finite" in str(info.value), (path, p.name)
            checked += 1
    assert checked >= 30  # every numeric option of every group


def test_a_non_finite_cpu_utilization_is_a_usage_error(runner):
    for bad in ("nan", "inf", "-5"):
        res = runner.invoke(
            main, ["autoscale", "recommend", "--current", "4", "--cpu-utilization", bad]
        )
        assert res.exit_code == 2, res.output
        assert "--cpu-utilization" in res.output and "Traceback" not in res.output
