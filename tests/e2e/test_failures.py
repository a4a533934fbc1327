"""Transient failures are retried; a permanent one mid-Map publishes nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workflow.errors import TranscodeError, TransientError


def _wrap(engine: Any, monkeypatch: pytest.MonkeyPatch, function: str, fault: Any) -> list[Any]:
    real = engine._handler(engine.functions[function])
    calls: list[Any] = []
    lock = threading.Lock()

    def faulty(event: dict[str, Any], context: Any) -> Any:
        with lock:
            calls.append(event)
            n = len(calls)
        fault(n, event)
        return real(event, context)

    monkeypatch.setitem(engine._handlers, function, faulty)
    return calls


def test_transient_failures_are_retried_until_the_job_succeeds(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a chunk function whose first two calls fail like a throttled S3
    def fail_twice(n: int, event: dict[str, Any]) -> None:
        if n <= 2:
            raise TransientError("simulated SlowDown from S3")

    calls = _wrap(engine, monkeypatch, "TranscodeChunkFunction", fail_twice)
    # WHEN a two-chunk video is processed
    run = run_job(clip("long_gop"), key="uploads/flaky.mp4")
    # THEN the retries carry it through: every chunk, plus the two failed attempts
    assert run.status == "SUCCEEDED", run.cause
    assert len(calls) == 2 + 2


def test_a_chunk_that_cannot_be_encoded_fails_the_job_and_publishes_nothing(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def break_second_chunk(n: int, event: dict[str, Any]) -> None:
        if event["item"]["chunk"]["index"] == 1:
            raise TranscodeError("ffmpeg failed: simulated corrupt slice")

    _wrap(engine, monkeypatch, "TranscodeChunkFunction", break_second_chunk)
    run = run_job(clip("long_gop"), key="uploads/broken-chunk.mp4")
    assert run.status == "FAILED"
    # The interpreter lets the Map succeed with a failed item (AWS would fail the Map
    # itself); either way Publish refuses and the chunk that did succeed is cleaned up.
    assert run.error in ("IncompleteOutputError", "TranscodeError")
    assert run.output_keys == []
    assert run.failure["error"] == run.error
