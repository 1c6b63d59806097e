"""``cognitionos tenant|user|key``: on the database directly and through a real server."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cognitionos.cli import main

from ._proc import running_server
from .conftest import bearer

TOKEN = re.compile(r"cos_(live|test)_[0-9A-Za-z]{46}")


@pytest.fixture
def runner(monkeypatch):
    for name in ("COGNITIONOS_STORE", "COGNITIONOS_URL", "COGNITIONOS_KEY"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def _ok(result):
    assert result.exit_code == 0, (result.output, result.stderr)
    assert "Traceback" not in result.output
    return result


def _run(runner, *args):
    return _ok(runner.invoke(main, list(args)))


def test_direct_tenant_user_key_lifecycle(runner, server_factory, tmp_path):
    server = server_factory()  # the server's database, bootstrapped
    store = server.state.settings.database_url
    c = server.client
    made = json.loads(_run(runner, "tenant", "create", "acme", "--owner-email", "o@acme.test",
                           "--store", store, "--json").stdout)  # fmt: skip
    tid, owner = made["tenant_id"], made["owner_key"]["token"]
    # the key the CLI printed works on the server, as the new tenant's owner
    me = c.get("/v1/whoami", headers=bearer(owner)).json()
    assert (me["tenant_id"], me["role"]) == (tid, "owner")
    listed = json.loads(_run(runner, "tenant", "list", "--store", store, "--json").stdout)
    assert {"platform", tid} <= {t["tenant_id"] for t in listed}

    # users
    uid = _run(runner, "user", "create", "dev@acme.test", "--role", "developer", "--tenant", tid,
               "--store", store).stdout.strip()  # fmt: skip
    users = json.loads(_run(runner, "user", "list", "--tenant", tid, "--store", store,
                            "--json").stdout)  # fmt: skip
    assert {u["email"]: u["role"] for u in users} == {
        "o@acme.test": "owner",
        "dev@acme.test": "developer",
    }
    _run(runner, "user", "set-role", uid, "viewer", "--tenant", tid, "--store", store)
    assert c.get(f"/v1/users/{uid}", headers=bearer(owner)).json()["role"] == "viewer"

    # keys: the token appears once, on stdout, and never in a listing
    human = _run(runner, "key", "create", "--tenant", tid, "--role", "viewer", "--name", "dash",
                 "--user-id", uid, "--store", store)  # fmt: skip
    token = human.stdout.strip()
    assert TOKEN.fullmatch(token) and "shown once" in human.stderr
    assert c.get("/v1/whoami", headers=bearer(token)).json()["role"] == "viewer"
    keys = _run(runner, "key", "list", "--tenant", tid, "--store", store, "--json").stdout
    assert token not in keys and token[9:17] in keys
    assert "secret_hash" not in keys

    # rotate: both valid during the overlap, the old one expires then
    rotated = json.loads(_run(runner, "key", "rotate", token[9:17], "--tenant", tid,
                              "--overlap", "3600", "--store", store, "--json").stdout)  # fmt: skip
    new = rotated["token"]
    assert rotated["rotated_from"] == token[9:17] and rotated["role"] == "viewer"
    for t in (token, new):
        assert c.get("/v1/whoami", headers=bearer(t)).status_code == 200
    assert rotated["old_key_expires_at"] - rotated["created_at"] == 3600 * 10**9

    # revoke, then delete the user (their remaining key is revoked with them)
    _run(runner, "key", "revoke", token[9:17], "--tenant", tid, "--store", store)
    assert c.get("/v1/whoami", headers=bearer(token)).status_code == 401
    _run(runner, "user", "delete", uid, "--tenant", tid, "--store", store)
    assert c.get("/v1/whoami", headers=bearer(new)).status_code == 401

    # every change is in the tenant's audit log, by the actor "cli"
    entries = [e["entry"] for e in c.get("/v1/audit", headers=bearer(owner)).json()["items"]]
    assert {e["actor"] for e in entries} == {"cli"}
    assert [e["action"] for e in entries] == [
        "tenant.create",
        "key.create",
        "user.create",
        "user.update",
        "key.create",
        "key.rotate",
        "key.revoke",
        "user.delete",
    ]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["user", "list"], "--tenant is required"),
        (["key", "list", "--tenant", "t_nope"], "no tenant 't_nope'"),
        (["key", "revoke", "nokey", "--tenant", "platform"], "no key 'nokey'"),
        (["key", "create", "--role", "viewer", "--tenant", "platform", "--expires-in", "inf"],
         "'--expires-in': 'inf' is not a finite"),
        (["key", "rotate", "x", "--tenant", "platform", "--overlap", "-1"], "--overlap"),
        (["user", "create", "not-an-email", "--role", "viewer", "--tenant", "platform"],
         "not an e-mail"),
        (["tenant", "list", "--store", "memory://"], "must be the server's SQLite or PostgreSQL"),
        (["tenant", "list", "--url", "http://127.0.0.1:9"], "--url needs --key"),
        (["tenant", "list", "--url", "ftp://x", "--key", "k"], "http:// or https://"),
        (["tenant", "list", "--url", "http://127.0.0.1:9", "--key", "k"], "cannot reach"),
    ],
)  # fmt: skip
def test_errors_are_one_line_naming_the_input(runner, server_factory, args, named):
    server = server_factory()
    if "--store" not in args and "--url" not in args:
        args = [*args, "--store", server.state.settings.database_url]
    result = runner.invoke(main, args)
    # a value the option's type refuses is click's usage error (2); the rest are ours (1)
    assert result.exit_code == (2 if "is not a finite" in named else 1), result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_through_a_server_the_keys_role_applies(runner, tmp_path):
    with running_server(tmp_path) as srv:
        root = srv.root
        assert root is not None
        remote = ["--url", srv.base, "--key", root]
        made = json.loads(_run(runner, "tenant", "create", "acme", *remote, "--json").stdout)
        owner = made["owner_key"]["token"]
        as_owner = ["--url", srv.base, "--key", owner]
        admin = _run(runner, "key", "create", "--role", "admin", *as_owner).stdout.strip()
        assert TOKEN.fullmatch(admin)
        as_admin = ["--url", srv.base, "--key", admin]
        # nobody creates or rotates a key stronger than their own
        refused = runner.invoke(main, ["key", "create", "--role", "owner", *as_admin])
        assert refused.exit_code == 1 and "403" in refused.stderr
        refused = runner.invoke(main, ["key", "rotate", owner[9:17], *as_admin])
        assert refused.exit_code == 1 and "stronger role 'owner'" in refused.stderr
        # what a server key sees is its own tenant
        keys = json.loads(_run(runner, "key", "list", *as_admin, "--json").stdout)
        assert {k["key_id"] for k in keys} == {owner[9:17], admin[9:17]}
        wrong = runner.invoke(main, ["key", "list", "--tenant", "platform", *as_admin])
        assert wrong.exit_code == 1 and "the key's tenant applies" in wrong.stderr
        uid = json.loads(_run(runner, "user", "create", "a@acme.test", "--role", "viewer",
                              *as_admin, "--json").stdout)["user_id"]  # fmt: skip
        _run(runner, "user", "set-role", uid, "developer", *as_admin)
        users = json.loads(_run(runner, "user", "list", *as_admin, "--json").stdout)
        assert [(u["email"], u["role"]) for u in users] == [("a@acme.test", "developer")]
        rotated = json.loads(_run(runner, "key", "rotate", admin[9:17], "--overlap", "0",
                                  *as_admin, "--json").stdout)  # fmt: skip
        # overlap 0: the old admin key is refused now, the new one works
        gone = runner.invoke(main, ["key", "list", *as_admin])
        assert gone.exit_code == 1 and "401" in gone.stderr
        _run(runner, "key", "list", "--url", srv.base, "--key", rotated["token"])
        tenants = json.loads(_run(runner, "tenant", "list", *remote, "--json").stdout)
        assert {"platform", made["tenant_id"]} <= {t["tenant_id"] for t in tenants}
