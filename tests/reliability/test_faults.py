"""Faults injected into the local engine: the transient are survived, the permanent named."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_asset
from workflow.local.faults import FaultPlan, parse

SURVIVABLE = (
    "probe:throttle,plan:timeout,transcode_chunk:transient,transcode_chunk:kill,"
    "transcode_audio:transient,s3put:slowdown:2,s3get:reset:3,publish:transient"
)


def arm(engine: Any, monkeypatch: pytest.MonkeyPatch, spec: str) -> FaultPlan:
    """Arm ``spec`` on the session's engine for one test; disarmed after it."""
    monkeypatch.setattr(engine, "faults", engine.faults)
    monkeypatch.setattr(engine.lambdas, "faults", engine.lambdas.faults)
    return engine.arm(spec)


def published(root: Path) -> dict[str, Any]:
    """What a player sees: media playlists byte for byte, every rung's frames and times.

    (x264 on several threads does not repeat its bitstream exactly, so segment bytes and
    the BANDWIDTH derived from them are compared as frames and timestamps instead.)
    """
    playlists = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("index.m3u8"))}
    asset = read_asset(root)
    streams = {name: (s.frames, s.first_pts, s.end_pts) for name, s in asset.video.items()}
    if asset.audio:
        streams["audio"] = (asset.audio.frames, asset.audio.first_pts, asset.audio.end_pts)
    return {"playlists": playlists, "streams": streams}


def test_transient_faults_are_retried_and_change_nothing(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the asset of an unfaulted run
    source = clip("long_gop")
    clean = run_job(source, key="uploads/clean.mp4")
    assert clean.status == "SUCCEEDED"
    # WHEN the same video runs through throttling, timeouts, a killed ffmpeg,
    # S3 503s, reads of the source S3 cut short, and transient errors in every step
    plan = arm(engine, monkeypatch, SURVIVABLE)
    faulted = run_job(source, key="uploads/faulted.mp4")
    # THEN every fault fired, the job succeeded, and the asset is byte for byte the same
    assert faulted.status == "SUCCEEDED", faulted.cause
    assert sorted(kind for _, kind in plan.fired) == sorted(
        [
            "throttle",
            "timeout",
            "transient",
            "kill",
            "transient",
            "slowdown",
            "slowdown",
            "reset",
            "reset",
            "reset",
            "transient",
        ]
    )
    assert published(faulted.out) == published(clean.out)
    shape = ("name", "width", "height", "codecs", "segments", "duration")
    clean_rungs, faulted_rungs = (
        [
            {k: r[k] for k in shape}
            for r in json.loads((run.out / "manifest.json").read_text())["renditions"]
        ]
        for run in (clean, faulted)
    )
    assert clean_rungs == faulted_rungs


@pytest.mark.parametrize(
    ("spec", "expected", "ladder"),
    [
        ("probe:permanent", "InjectedFaultError", "fixed"),
        ("plan:permanent", "InjectedFaultError", "fixed"),
        ("publish:permanent", "InjectedFaultError", "fixed"),
        # A failed child fails the Map (it tolerates none), as on AWS; the function never
        # ran, so no error of its own names the job's failure.
        ("transcode_chunk:permanent", "States.ExceedToleratedFailureThreshold", "fixed"),
        ("transcode_audio:permanent", "States.ExceedToleratedFailureThreshold", "fixed"),
        # Retries run out (4 attempts): the transient error becomes the job's failure.
        # Enough faults for every attempt of every chunk: nine spread over three chunks
        # could leave each its fourth attempt, and the job would (rightly) succeed.
        ("probe:transient:9", "TransientError", "fixed"),
        ("transcode_chunk:kill:99", "TranscodeInterruptedError", "fixed"),
        # A per-title job's analysis spans run first: the job fails before any chunk,
        # named by the span's own error (its failure fails the analysis Map).
        ("transcode_chunk:kill:99", "TranscodeInterruptedError", "per-title"),
    ],
)
def test_permanent_faults_fail_named_and_leave_nothing(
    spec: str,
    expected: str,
    ladder: str,
    engine: Any,
    clip: Any,
    run_job: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arm(engine, monkeypatch, spec)
    key = f"uploads/{spec.replace(':', '-')}-{ladder}.mp4"
    run = run_job(clip("long_gop"), key=key, metadata={"vidflow-ladder": ladder})
    assert run.status == "FAILED"
    assert run.error == expected, run.cause
    assert run.failure["error"] == expected and run.failure["input"]["key"] == key
    if expected == "TranscodeInterruptedError":
        # the work item's own error, not the Map's: which chunk, and what happened to it
        item = "analysis" if ladder == "per-title" else "video"
        assert re.fullmatch(rf"{item}-\d{{5}}: ffmpeg was killed by SIGKILL", run.cause), run.cause
    assert run.output_keys == [], "an incomplete asset was published"
    s3 = engine.client("s3")
    scratch = s3.list_objects_v2(
        Bucket=engine.endpoints.output_bucket, Prefix=f"jobs/{run.job_id}/"
    )
    assert scratch.get("KeyCount", 0) == 0, "scratch left behind"


def test_the_local_lambda_services_own_failures_are_survived(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every warm execution environment killed from outside while idle, and the next
    # start of a chunk's environment failing inside the local service (no file numbers)
    lambdas = engine.lambdas
    for worker in lambdas.workers():
        os.killpg(worker.process.pid, signal.SIGKILL)
    failed: list[str] = []
    start = lambdas._cold_start

    def fails_once(function: Any) -> Any:
        if function.logical_id == "TranscodeChunkFunction" and not failed:
            failed.append(function.logical_id)
            raise OSError(errno.EMFILE, "Too many open files")
        return start(function)

    monkeypatch.setattr(lambdas, "_cold_start", fails_once)
    # WHEN a job runs
    run = run_job(clip("long_gop"), key="uploads/service-failure.mp4")
    # THEN the dead environments were replaced unseen, the failed start was retried as
    # Lambda.ServiceException, the job published, and the function log names the cause
    assert run.status == "SUCCEEDED", run.cause
    assert failed == ["TranscodeChunkFunction"]
    assert run.output_keys
    log = engine.log_file.read_text()
    assert "the local Lambda service failed" in log and "Too many open files" in log


def test_a_bad_fault_spec_is_named() -> None:
    from workflow.local.faults import FaultSpecError

    # (a COUNT of 0 or less armed a fault that never fired, unsaid)
    never = ("transcode_chunk:kill:0", "s3put:slowdown:-5")
    bad = ("probe", "probe:explode", "s3put:kill", "s3get:slowdown", "probe:transient:x")
    for spec in (*bad, *never):
        with pytest.raises(FaultSpecError):
            parse(spec)
    assert [f.remaining for f in parse("probe:transient,transcode_chunk:kill:3")] == [1, 3]


def test_a_throttle_storm_is_waited_out_not_failed(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Lambda throttling a step ten times in a row, as when other jobs' Maps hold the
    # account's concurrency (the other errors' retriers give up after four attempts)
    plan = arm(engine, monkeypatch, "probe:throttle:10")
    # WHEN a job runs
    run = run_job(clip("h264_aac_2gop"), key="uploads/throttled.mp4")
    # THEN it waited for a slot and published
    assert run.status == "SUCCEEDED", run.cause
    assert plan.fired == [("ProbeFunction", "throttle")] * 10


def test_an_item_lambda_stopped_is_named_in_the_jobs_failure(
    engine: Any, clip: Any, run_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Lambda stopping every attempt of a chunk's function from outside (out of time
    # here; out of memory is the same), so the function leaves no error of its own
    arm(engine, monkeypatch, "transcode_chunk:timeout:99")
    # WHEN a job runs
    run = run_job(clip("long_gop"), key="uploads/stopped.mp4")
    # THEN its failure says which item left nothing and why the operator finds no error
    assert run.status == "FAILED", run.cause
    assert run.error == "States.ExceedToleratedFailureThreshold", run.cause
    assert re.search(
        r"video-\d{5} left no result and no error: Lambda stopped its function", run.cause
    ), run.cause
    assert run.failure["cause"] == run.cause
    assert run.output_keys == []
