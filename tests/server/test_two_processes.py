"""Two ``cognitionos serve`` processes on one PostgreSQL + Redis act as one system."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from ._proc import running_server
from .test_scale_out import _clean_server_tables


@pytest.mark.postgresql
@pytest.mark.redis
def test_limit_of_50_per_minute_over_two_servers_admits_exactly_50(
    postgres_url, redis_url, tmp_path
):
    _clean_server_tables(postgres_url)
    env = {"COGNITIONOS_DATABASE_URL": postgres_url, "COGNITIONOS_REDIS_URL": redis_url}
    with running_server(tmp_path, env) as one:
        assert one.root is not None  # the first process bootstrapped the empty database
        with running_server(tmp_path, env) as two:
            assert two.root is None  # the second found it bootstrapped
            auth = {"Authorization": f"Bearer {one.root}"}
            a = httpx2.Client(base_url=one.base, headers=auth, timeout=30)
            b = httpx2.Client(base_url=two.base, headers=auth, timeout=30)
            try:
                name = f"p{uuid.uuid4().hex[:8]}"
                r = a.post("/v1/ratelimit/policies", json={"name": name, "limits": "50/minute"})
                assert r.status_code == 201, r.text
                body = {"policy": name, "key": "shared-user"}

                def check(i: int) -> bool:
                    client = a if i % 2 else b
                    answer = client.post("/v1/ratelimit/check", json=body)
                    assert answer.status_code == 200, answer.text
                    return bool(answer.json()["allowed"])

                with ThreadPoolExecutor(8) as pool:
                    allowed = list(pool.map(check, range(80)))
                assert allowed.count(True) == 50

                # a flag toggled through one is served by the other within 1 s
                flag = f"f{uuid.uuid4().hex[:8]}"
                assert (
                    a.post("/v1/flags", json={"key": flag, "default_value": 1}).status_code == 201
                )
                evaluate = {"attributes": {"id": "u1"}}
                assert b.post(f"/v1/flags/{flag}/evaluate", json=evaluate).json()["value"] == 1
                assert (
                    a.post(f"/v1/flags/{flag}/toggle", json={"enabled": False}).status_code == 200
                )
                toggled = time.monotonic()
                while True:
                    got = b.post(f"/v1/flags/{flag}/evaluate", json=evaluate).json()
                    if got["reason"] == "DISABLED":
                        break
                    assert time.monotonic() - toggled < 1.0, got
                    time.sleep(0.02)
            finally:
                a.close()
                b.close()
