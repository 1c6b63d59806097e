"""``cognitionos ratelimit`` commands against a shared SQLite file and Redis."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from cognitionos.ratelimit._cli import ratelimit

from .conftest import REDIS_URL, redis_client


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}", "rl"
        return
    client = redis_client()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield REDIS_URL, prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_check_looks_without_charging_unless_asked(url):
    store, prefix = url
    runner = CliRunner()
    args = ["check", "1/minute", "tenant:acme", "--store", store, "--prefix", prefix]
    for _ in range(2):
        result = runner.invoke(ratelimit, args)
        assert result.exit_code == 0, result.output
        assert "tenant:acme: allowed (0/1 left" in result.output
    assert runner.invoke(ratelimit, [*args, "--hit"]).exit_code == 0
    refused = runner.invoke(ratelimit, [*args, "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["allowed"] is False


def test_ban_bans_unban(url):
    store, prefix = url
    runner = CliRunner()
    opts = ["--store", store, "--prefix", prefix]
    result = runner.invoke(ratelimit, ["ban", "ip:203.0.113.9", "--seconds", "600", *opts])
    assert result.exit_code == 0 and "banned ip:203.0.113.9 for 600 s" in result.output
    listing = runner.invoke(ratelimit, ["bans", *opts, "--json"])
    listed = json.loads(listing.stdout)
    assert [b["key"] for b in listed] == ["ip:203.0.113.9"] and listed[0]["manual"]
    check = runner.invoke(ratelimit, ["check", "5/second", "ip:203.0.113.9", *opts])
    assert check.exit_code == 1 and "banned" in check.output
    assert "unbanned" in runner.invoke(ratelimit, ["unban", "ip:203.0.113.9", *opts]).output
    assert "no bans" in runner.invoke(ratelimit, ["bans", *opts]).output


def test_bad_limit_is_a_clean_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(ratelimit, ["check", "lots", "k", "--store", url])
    assert result.exit_code == 1 and "cannot parse rate limit 'lots'" in result.output
