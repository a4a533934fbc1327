"""How `vidflow process` reads a job whose execution does not exist yet."""

from __future__ import annotations

from types import SimpleNamespace

from workflow.cli.run import START_BOUND_SECONDS, _not_started
from workflow.local.engine import AsyncFailure


def test_a_job_is_starting_until_the_bound_then_it_did_not_start() -> None:
    engine = SimpleNamespace(async_failures=[])
    assert _not_started(engine, 1.0) == {"status": "STARTING"}
    late = _not_started(engine, START_BOUND_SECONDS + 1)
    assert late["status"] == "NOT_STARTED" and late["error"] == "NoExecution"


def test_a_failed_event_ends_the_wait_with_the_functions_error() -> None:
    failure = AsyncFailure("StartJobFunction", 1, {"errorType": "ConfigurationError",
                                                   "errorMessage": "LADDER is empty"})  # fmt: skip
    state = _not_started(SimpleNamespace(async_failures=[failure]), 0.5)
    assert state == {
        "status": "NOT_STARTED",
        "error": "ConfigurationError",
        "cause": "StartJobFunction failed on the upload's event: LADDER is empty",
    }
