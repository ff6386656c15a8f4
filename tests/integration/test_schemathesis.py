"""Schemathesis fuzzes every operation of the running stack from the document the stack serves.

Checks: no server error, every status documented, every body of the documented content type and
valid against its schema, required headers (Retry-After) present. Both valid (positive) and
invalid (negative) inputs are generated, a bounded and derandomized number per operation, so the
file runs in well under a minute on the shared stack; submissions are the fewest, since each
accepted one is a real SQS message that the worker stores and recomputes.

Schemathesis' own pytest loader (``schemathesis.pytest.from_fixture``) breaks on pytest 9
(it sets ``Node._nodeid``), so the cases are drawn from ``APIOperation.as_strategy`` here.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.config.settings import Settings
from tests.support import LiveStack
from web.openapi import OPENAPI_PATH, build_document

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Operation ids are fixed by the code; the first test checks the stack serves the same set.
DOCUMENT = build_document(Settings())
OPERATIONS = {
    op["operationId"]: bool(op.get("parameters") or op.get("requestBody"))
    for item in DOCUMENT["paths"].values()
    for op in item.values()
}
CASES = [
    pytest.param(operation_id, mode, id=f"{operation_id}-{mode}")
    for operation_id, has_inputs in sorted(OPERATIONS.items())
    # Negative cases need an input to break; without one there is nothing to generate.
    for mode in (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        if has_inputs
        else [GenerationMode.POSITIVE]
    )
]
# Positive submissions are accepted and queued: few. Invalid ones stop at the edge.
EXAMPLES = {("addReport", GenerationMode.POSITIVE): 10, ("addReport", GenerationMode.NEGATIVE): 30}
DEFAULT_EXAMPLES = 40


@pytest.fixture(scope="module")
def api_schema(stack: LiveStack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.url}{OPENAPI_PATH}", timeout=10)


def test_the_stack_serves_every_operation(stack: LiveStack, api_schema: Any) -> None:
    served = requests.get(f"{stack.url}{OPENAPI_PATH}", timeout=10).json()
    ids = {op["operationId"] for item in served["paths"].values() for op in item.values()}
    assert ids == set(OPERATIONS)
    for operation_id in OPERATIONS:
        assert api_schema.find_operation_by_id(operation_id) is not None


@pytest.mark.parametrize(("operation_id", "mode"), CASES)
def test_every_operation_answers_as_documented(
    api_schema: Any, stack: LiveStack, operation_id: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_id(operation_id)
    session = requests.Session()

    @hypothesis.settings(
        max_examples=EXAMPLES.get((operation_id, mode), DEFAULT_EXAMPLES),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(base_url=stack.url, session=session, checks=CHECKS, timeout=10)

    answers_as_documented()
