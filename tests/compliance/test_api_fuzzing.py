"""Schema fuzzing: schemathesis generates calls from /api/v1/schema/ and checks every answer against it.

For every operation of the schema, as an officer and as an engineer (each with a DRF token),
schemathesis draws valid calls (positive) and invalid ones (negative) and checks that no answer
is a 5xx, that every status code is documented, and that each body matches the schema of its
status and content type. ``{id}`` is drawn freely and, as often, set to a real object built
through the services (``api_world``), so the fuzzing reaches past the 404s.

Each call runs through Django's WSGI application inside a savepoint that is rolled back: one
call never sees what another changed, and a bug that breaks the transaction cannot hide the
calls after it. Bounded (``LETHE_FUZZ_EXAMPLES`` calls per operation, role and mode) and
derandomised, so that a run takes a minute or two on two slow cores and finds the same things
each time; raise the number (and set ``LETHE_FUZZ_SEED``) to search further.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories.api_world import api_token, api_world  # noqa: F401  (fixtures)
from tests.factories.jobs import data_dir  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES_PER_OPERATION = int(os.environ.get("LETHE_FUZZ_EXAMPLES", "12"))
FUZZ_SEED = os.environ.get("LETHE_FUZZ_SEED")
ROLES = ("officer", "engineer")
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_app_in_test_transaction():
    """Return Django's WSGI application with each request kept in the test's transaction.

    Django closes the database connection at the end of every request; its own test client
    disconnects that handler for the same reason, and so does this fixture while it lasts.
    """
    from django.core.wsgi import get_wsgi_application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _route_text(operation_path: str) -> str:
    """Return an OpenAPI path in the resolver's spelling, for ``ApiWorld.id_for``."""
    return operation_path.removeprefix("/api/v1/").replace("{id}", "<int:pk>")


def _fuzz_operation(operation, *, mode, headers: dict, real_id: int | None, counts: Counter) -> None:
    """Run schemathesis's calls for one operation, role and mode; raise on the first failed check."""
    strategy = operation.as_strategy(mode)
    if real_id is not None:
        strategy = st.one_of(strategy, operation.as_strategy(mode, path_parameters={"id": real_id}))

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=FUZZ_SEED is None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case):
        counts["cases"] += 1
        with transaction.atomic():
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
            finally:
                transaction.set_rollback(True)
        counts[f"{response.status_code // 100}xx"] += 1

    if FUZZ_SEED is not None:
        call = seed(int(FUZZ_SEED))(call)
    call()


def test_every_api_answer_conforms_to_the_schema_and_none_is_a_server_error(
    api_world, role_users, wsgi_app_in_test_transaction
):
    headers = {role: {"Authorization": f"Token {api_token(role_users[role])}"} for role in ROLES}
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/", wsgi_app_in_test_transaction, headers=headers[ROLES[0]]
    )
    counts: Counter = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        real_id = api_world.id_for(_route_text(operation.path)) if "{id}" in operation.path else None
        for role in ROLES:
            for mode in MODES:
                try:
                    _fuzz_operation(
                        operation, mode=mode, headers=headers[role], real_id=real_id, counts=counts
                    )
                except Unsatisfiable:
                    # Nothing to make invalid: no parameter and no body (GET /api/v1/datasets/).
                    assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                    counts["operations without invalid input"] += 1
                except (
                    Exception,
                    BaseExceptionGroup,
                ) as error:  # every failing operation, not only the first
                    failures.append(f"{role}, {mode.value}: {operation.label}\n{error}")
    print(
        f"schemathesis: {len(operations)} operations, {counts['cases']} cases, "
        + ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()) if key != "cases")
    )
    assert len(operations) >= 40, "the schema lost operations: is the API base's schema class in use?"
    assert counts["cases"] >= len(operations) * len(ROLES) * len(MODES), "fewer calls than operations"
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
