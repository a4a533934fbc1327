"""Transient failures are retried; a permanent one mid-Map publishes nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workflow import transcode
from workflow.errors import TranscodeError, TransientError


def _wrap(engine: Any, monkeypatch: pytest.MonkeyPatch, function: str, fault: Any) -> list[Any]:
    real = engine.host._handler(engine.functions[function])
    calls: list[Any] = []
    lock = threading.Lock()

    def faulty(event: dict[str, Any], context: Any) -> Any:
        with lock:
            calls.append(event)
            n = len(calls)
        fault(n, event)
        return real(event, context)

    monkeypatch.setitem(engine.host._handlers, function, faulty)
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
    clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an ffmpeg that fails on the second chunk of the source (it starts at 10 s)
    real_run = transcode.run_ffmpeg

    def fail_second_chunk(args: list[str], timeout: float) -> None:
        if "-ss" in args and float(args[args.index("-ss") + 1]) > 5:
            raise TranscodeError("ffmpeg failed: simulated corrupt slice")
        real_run(args, timeout)

    monkeypatch.setattr(transcode, "run_ffmpeg", fail_second_chunk)
    # WHEN the video is processed
    run = run_job(clip("long_gop"), key="uploads/broken-chunk.mp4")
    # THEN the job ends with the item's own error, and nothing stays published. (The
    # interpreter lets the Map succeed with a failed item, AWS fails the Map itself:
    # both end here.)
    assert run.status == "FAILED"
    assert run.error == "TranscodeError"
    assert run.cause == "video-00001: ffmpeg failed: simulated corrupt slice"
    assert run.output_keys == []
    assert run.failure["error"] == "TranscodeError"
