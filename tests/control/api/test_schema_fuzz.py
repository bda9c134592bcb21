"""Every operation in the OpenAPI document, fed generated requests: never a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case

from tests.support.control import Control

EXAMPLES_PER_OPERATION = 12


def test_no_generated_request_gets_a_server_error(control: Control) -> None:
    schema = schemathesis.openapi.from_url(f"{control.url}/openapi.json")
    # As admin, so that requests get past auth to the validation and the handlers behind it.
    headers = {"Authorization": f"Bearer {control.tokens['admin']}"}
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def call(case: Case) -> None:
            try:
                response = case.call(headers=headers, timeout=10)
            except Exception as exc:  # kept, not raised: a failure is reported, never shrunk for minutes
                server_errors.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}: {exc}")
                return
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text}")

        call()
    assert operations >= 20
    assert server_errors == []
