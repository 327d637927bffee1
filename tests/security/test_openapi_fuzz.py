"""schemathesis against the server's own OpenAPI document (/engine-rest/openapi.json):
every operation, valid and invalid requests, as an administrator and as a department
officer; no 500, and every response matches the document (status, content type, schema).

Bounded: a few examples per operation (APPROVALS_FUZZ_EXAMPLES, default 5, for the
administrator; fewer for the other passes), long polls cut to 0 ms, no shrinking; about
30 s per database.  Raise APPROVALS_FUZZ_EXAMPLES for a deeper run."""
from __future__ import annotations

import base64
import os

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install -r requirements-dev.txt")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)  # noqa: E402

from tests.security.models import application  # noqa: E402

EXAMPLES = int(os.environ.get("APPROVALS_FUZZ_EXAMPLES", "5"))
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
               response_headers_conformance]


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _bounded(case) -> None:
    """A generated long poll would hold the test for its whole timeout: ask for none."""
    if isinstance(case.body, dict) and "asyncResponseTimeout" in case.body:
        case.body["asyncResponseTimeout"] = 0


def fuzz(app, headers: dict, mode: GenerationMode, checks: list, examples: int) -> list[str]:
    schema = schemathesis.openapi.from_wsgi("/engine-rest/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def call(case):
            _bounded(case)
            case.call_and_validate(headers=headers, checks=checks)

        try:
            call()
        except BaseException as err:                   # noqa: BLE001 - collect every operation's failure
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            failures.append(f"{operation.label} ({mode.value}): {str(err)[:2000]}")
    return failures


def test_no_operation_answers_500_or_outside_its_documented_shape(client, app):
    client.create_user("fgw1", ["fgw"])
    client.deploy(extra={"application.bpmn": application()})
    client.start("application")
    failures = fuzz(app, basic("admin", "admin-secret"), GenerationMode.POSITIVE, CONFORMANCE, EXAMPLES)
    failures += fuzz(app, basic("fgw1", "pw"), GenerationMode.POSITIVE, CONFORMANCE, max(EXAMPLES // 2, 1))
    failures += fuzz(app, basic("admin", "admin-secret"), GenerationMode.NEGATIVE, [not_a_server_error],
                     max(EXAMPLES // 2, 1))
    assert not failures, "\n\n".join(failures)
