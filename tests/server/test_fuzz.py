"""schemathesis against the OpenAPI document, in process: no 5xx, answers match the schema.

Every operation is fuzzed with an owner key of the platform tenant (so most requests pass
authentication and reach the handlers); a bounded number of examples per operation keeps the
run short.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev extra) not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

from .conftest import make_settings  # noqa: E402

EXAMPLES = 8  # per operation; bounded so the suite stays fast


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from starlette.testclient import TestClient

    from cognitionos.server import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz")), announce=False)
    with TestClient(app):  # runs the lifespan; the app stays usable until the module ends
        yield app


def test_no_server_errors_and_schema_conformance(fuzz_app):
    from hypothesis import given

    token = fuzz_app.state.bootstrap_token
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 40
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
