"""Every job announces its outcome once on the stack's bus: the event log keeps it and the
webhook receives it with its API key, and each validates against its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tests import emf
from tests.outcomes import check, logged, types
from tests.webhook import API_KEY, API_KEY_HEADER, Webhook
from workflow import metrics


def resolve(engine: Any, url: str) -> int:
    """The size of the object an event's URL names."""
    parsed = urlparse(url)
    assert parsed.scheme == "s3", url
    head = engine.client("s3").head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    return int(head["ContentLength"])


def test_a_published_job_announces_one_event_whose_urls_all_exist(
    clip: Any, engine: Any, run_job: Any, webhook: Webhook
) -> None:
    # GIVEN a video WHEN it is uploaded and its job succeeds
    run = run_job(clip("h264_aac_2gop"))
    assert run.status == "SUCCEEDED"
    # THEN the webhook gets exactly one event for the job, with the API key (every
    # delivery queued ended: a second one could not still be on its way)
    received = webhook.delivered(job_id=run.job_id)
    assert types(received) == ["Job Published"]
    [delivery] = [d for d in webhook.deliveries if d.event["detail"].get("job_id") == run.job_id]
    assert delivery.headers[API_KEY_HEADER] == API_KEY
    # AND the event log holds the same one event
    assert [e["detail"] for e in logged(engine, job_id=run.job_id)] == [received[0]["detail"]]
    # AND it validates, and every URL in it names an object that exists
    detail = check(received[0])["detail"]
    assert {"master", "manifest", "poster", "thumbnails"} <= detail["urls"].keys()
    assert all(resolve(engine, url) > 0 for url in detail["urls"].values())
    assert detail["urls"]["master"].endswith(f"outputs/{run.job_id}/master.m3u8")
    assert [r["name"] for r in detail["renditions"]] and detail["duration_seconds"] > 0
    assert detail["cost_estimate_usd"] > 0


def test_a_rejected_upload_announces_one_failure_with_its_error(
    tmp_path: Path, engine: Any, run_job: Any, webhook: Webhook
) -> None:
    source = tmp_path / "not-a-video.mp4"
    source.write_bytes(b"hello, this is text and not a video" * 10)
    run = run_job(source)
    assert run.error == "NotAVideoError"
    [event] = webhook.delivered(job_id=run.job_id)
    detail = check(event)["detail"]
    assert event["detail-type"] == "Job Failed"
    assert detail["error"] == "NotAVideoError"
    assert detail["source"]["key"] == "uploads/not-a-video.mp4"
    assert detail["cause"] == run.cause
    assert len(logged(engine, job_id=run.job_id)) == 1


def test_retried_steps_still_announce_once(
    clip: Any, engine: Any, run_job: Any, webhook: Webhook
) -> None:
    # GIVEN a stack where Publish fails transiently, S3 puts slow down, and the recorder of
    # failures times out: every announcing step runs more than once
    fired = engine.arm("publish:transient:1,publish:timeout:1,s3put:slowdown:6")
    try:
        # (a key of its own: the same bytes at another test's key would be that job)
        run = run_job(clip("vfr"), key="uploads/announced-once.mp4")
    finally:
        engine.arm("")
    assert run.status == "SUCCEEDED", run.cause
    assert ("PublishFunction", "transient") in fired.fired
    # THEN one event, one log entry (the execution ended, so every put was made: wait
    # for their deliveries to end, not for the first to come)
    received = webhook.delivered(job_id=run.job_id)
    assert types(received) == ["Job Published"]
    assert len(logged(engine, job_id=run.job_id)) == 1


def test_a_publish_run_twice_announces_once(
    clip: Any, engine: Any, run_job: Any, webhook: Webhook
) -> None:
    # GIVEN a published job
    run = run_job(clip("odd_size"))
    webhook.wait_for(1, job_id=run.job_id)
    # WHEN its Publish runs again (a retry after a lost answer)
    _, error = engine.invoke("PublishFunction", _publish_input(engine, run.job_id))
    assert error is None, error
    # THEN nothing more is announced (Publish has returned, so anything it put is queued:
    # wait for the queue to empty rather than for a few quiet seconds)
    assert len(webhook.delivered(job_id=run.job_id)) == 1
    assert len(logged(engine, job_id=run.job_id)) == 1


def _publish_input(engine: Any, job_id: str) -> dict[str, Any]:
    """What Publish reads of its state: the execution's input (job and source)."""
    sfn = engine.client("stepfunctions")
    arn = engine.endpoints.state_machine_arn.replace(":stateMachine:", ":execution:")
    return dict(json.loads(sfn.describe_execution(executionArn=f"{arn}:{job_id}")["input"]))


def test_every_metric_record_is_valid_emf_and_the_jobs_add_up(engine: Any) -> None:
    # GIVEN every EMF record the functions wrote this session (the jobs above among them)
    found = emf.records(engine.log_file)
    assert found, "no function wrote a metric record"
    # THEN each is valid EMF, in vidflow's namespace, with low-cardinality dimensions only
    for function, record in found:
        emf.check(record)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "vidflow", function
            dimensions = {d for dims in directive["Dimensions"] for d in dims}
            assert dimensions <= {"service", "Stack", "ErrorName"}, (function, dimensions)
            assert {m["Name"] for m in directive["Metrics"]} <= set(metrics.NAMES), function
    # AND every job started was counted once, and ended counted once: succeeded or failed
    started = [job for _, record in found if "JobsStarted" in record for job in record["job_ids"]]
    ended = {
        job: emf.total(found, "JobsSucceeded", job_id=job)
        + emf.total(found, "JobsFailed", job_id=job)
        for job in set(started)
    }
    assert sorted(started) == sorted(set(started))
    finished = [job for job, count in ended.items() if count]
    assert finished and all(ended[job] == 1 for job in finished), ended
    # AND a failure is also counted by its error's name
    by_error = [r for _, r in found if "ErrorName" in r]
    assert {r["ErrorName"] for r in by_error} >= {"NotAVideoError"}


def test_every_step_of_a_job_is_traced_with_its_job_and_its_ffmpeg_runs(
    clip: Any, engine: Any, run_job: Any
) -> None:
    # GIVEN a job run through the stack, whose functions send X-Ray segments
    run = run_job(clip("long_gop"))
    assert run.status == "SUCCEEDED"
    documents = engine.traces.documents()
    # THEN each step's handler subsegment is annotated with the job id
    mine = [d for d in _walk(documents) if d.get("annotations", {}).get("job_id") == run.job_id]
    assert {d["annotations"].get("Service") for d in mine} == {"vidflow"}
    assert {d["name"] for d in mine} == {"## handler"}
    traces = {d["trace_id"] for d in mine}
    # AND its S3 calls are subsegments too (botocore is patched)
    assert "s3" in {d["name"] for d in _walk(documents) if d["trace_id"] in traces}
    # AND the chunk jobs' ffmpeg runs are subsegments of those traces
    ffmpeg = [d for d in _walk(documents) if d["name"] == "## ffmpeg" and d["trace_id"] in traces]
    assert ffmpeg
    assert all(d["end_time"] >= d["start_time"] for d in ffmpeg)


def _walk(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (sub)segment, nested ones too, each with its trace id."""
    found = []
    stack = [(d, d.get("trace_id")) for d in documents]
    while stack:
        document, trace = stack.pop()
        found.append({**document, "trace_id": document.get("trace_id", trace)})
        stack.extend(
            (child, document.get("trace_id", trace)) for child in document.get("subsegments", [])
        )
    return found
