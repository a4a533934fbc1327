"""Each function invoked by hand with an event not of its shape: refused by name at its
handler (``EventError``, naming the field), before it reads or writes anything."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.records import plan
from workflow import metrics
from workflow.errors import EventError
from workflow.media.audio_pieces import AudioPiece
from workflow.media.chunks import Chunk
from workflow.media.subtitles import Sidecar
from workflow.runtime import Clients, Deadline
from workflow.settings import Settings
from workflow.vod.items import Work, work_item
from workflow.vod.records import ImagesPiece, WorkItem

ROOT = Path(__file__).resolve().parents[2]
INGEST = "vidflow-ingest-123456789012-us-east-1"  # the sample events' bucket
OUTPUT = "vidflow-output-handlers"
# Each function and its sample event in events/.
SAMPLES = {
    "start_job": "s3-put-upload.json",
    "live_ingest": "s3-put-live-segment.json",
    "probe": "probe.json",
    "plan": "plan.json",
    "transcode_chunk": "transcode-chunk.json",
    "transcode_audio": "transcode-audio.json",
    "images": "images.json",
    "subtitles": "subtitles.json",
    "publish": "publish.json",
    "record_failure": "record-failure.json",
    "live_probe": "live-probe.json",
    "live_transcode": "live-transcode.json",
    "live_publish": "live-publish.json",
    "clip": "clip.json",
    "live_sweep": "scheduled-live-sweep.json",
}
# What each reads first: without it (or with it of another kind) it is refused.
FIELDS = {
    "start_job": ["Records"],
    "live_ingest": ["Records"],
    "probe": ["job_id", "source"],
    "plan": ["job_id", "source"],
    "transcode_chunk": ["job_id", "source", "item"],
    "transcode_audio": ["job_id", "source", "item"],
    "images": ["job_id", "source", "item"],
    "subtitles": ["job_id", "source", "item"],
    "publish": ["job_id", "source"],
    "record_failure": ["job_id"],
    "live_probe": ["stream", "sequence", "source"],
    "live_transcode": ["stream", "sequence", "source"],
    "live_publish": ["stream", "sequence"],
    "clip": ["stream", "name", "request"],
    "live_sweep": [],  # (a schedule's event: its time, if any, is read below)
}


class Context:
    """What Lambda passes a handler, as far as the handlers read it."""

    aws_request_id = "c0ffee"
    function_name = "vidflow-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:vidflow-test"
    log_group_name = "/aws/lambda/vidflow-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "INGEST_BUCKET": INGEST,
        "OUTPUT_BUCKET": OUTPUT,
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:vidflow-vod",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "vidflow-test",
    }.items():
        monkeypatch.setenv(name, value)
    # (the process's one Metrics took its namespace from the environment when first
    # imported, and may hold another test's unflushed metrics: a handler's flush then
    # fails on the namespace, not on the event)
    monkeypatch.setattr(metrics.metrics.provider, "namespace", "vidflow-test")
    metrics.metrics.clear_metrics()
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=INGEST)
        client.create_bucket(Bucket=OUTPUT)
        yield client


def handler_of(function: str) -> Any:
    """``lambdas/<function>/app.py``'s handler, imported as Lambda would (cold)."""
    spec = importlib.util.spec_from_file_location(
        f"handler_events_{function}", ROOT / "lambdas" / function / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = ModuleType(spec.name)
    module.__file__ = spec.origin
    spec.loader.exec_module(module)
    return module.handler


def sample(function: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / SAMPLES[function]).read_text())
    return event


def written(s3: Any) -> list[str]:
    return [
        o["Key"]
        for bucket in (INGEST, OUTPUT)
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    ]


def refused(function: str, event: Any) -> str:
    with pytest.raises(EventError) as raised:
        handler_of(function)(event, Context())
    return str(raised.value)


CASES = [
    pytest.param(function, field, bad, id=f"{function}-{field}-{bad!r}")
    for function, fields in FIELDS.items()
    for field in fields
    for bad in ("<missing>", None, "../outputs", -7)
]


@pytest.mark.parametrize(("function", "field", "bad"), CASES)
def test_a_field_missing_or_of_another_kind_is_named(
    function: str, field: str, bad: Any, s3: Any
) -> None:
    # GIVEN the function's sample event with one field it reads gone, or of another kind
    event = sample(function)
    if bad == "<missing>":
        del event[field]
    else:
        event[field] = bad
    # WHEN it is invoked
    said = refused(function, event)
    # THEN it is refused, naming the field, and nothing is written
    assert f"'{field}'" in said
    assert written(s3) == []


@pytest.mark.parametrize("function", FIELDS)
@pytest.mark.parametrize("event", [None, ["s3:TestEvent"]], ids=repr)
def test_an_event_that_is_no_json_object_is_named(function: str, event: Any, s3: Any) -> None:
    assert refused(function, event).startswith("the event is ")
    assert written(s3) == []


@pytest.mark.parametrize("function", ["start_job", "live_ingest"])
def test_an_upload_handler_refuses_what_s3_never_sends(function: str, s3: Any) -> None:
    # GIVEN an EventBridge "Object Created" event, routed to the S3-notification handler
    bridge = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": INGEST}, "object": {"key": "uploads/a.mp4", "size": 9}},
    }
    assert "no 'Records'" in refused(function, bridge)
    # AND an S3 event with no records, or more than S3 ever sends at once
    one = sample(function)["Records"][0]
    assert "'Records' is a list of 0" in refused(function, {"Records": []})
    assert "'Records' is a list of 101" in refused(function, {"Records": [one] * 101})
    # AND a record whose size is not a whole number of bytes
    for size in ("lots", -1, 1.5, None):
        record = copy.deepcopy(one)
        record["s3"]["object"]["size"] = size
        assert "'Records'" in refused(function, {"Records": [record]})
    assert written(s3) == []


SOURCES = {
    function: "request" if "request" in fields else "source"
    for function, fields in FIELDS.items()
    if "source" in fields or "request" in fields
}


@pytest.mark.parametrize("function", SOURCES)
def test_a_source_in_another_bucket_is_refused_naming_the_stacks(function: str, s3: Any) -> None:
    # GIVEN the function's sample event, its source moved to a bucket the stack does not
    # own (one that exists: S3 would answer AccessDenied on AWS, NoSuchBucket locally)
    s3.create_bucket(Bucket="someone-elses")
    event = sample(function)
    event[SOURCES[function]] = {**event[SOURCES[function]], "bucket": "someone-elses"}
    # WHEN it is invoked
    said = refused(function, event)
    # THEN it is refused by the field's name and the bucket the stack reads
    assert said.startswith(f"the event's {SOURCES[function]!r} is ")
    assert f"'bucket': {INGEST!r}" in said
    assert written(s3) == []


@pytest.mark.parametrize("time", ["soon", 1767225600, ["2026-12-01T00:00:00Z"]], ids=repr)
def test_a_sweep_at_a_time_that_is_no_time_is_named(time: Any, s3: Any) -> None:
    said = refused("live_sweep", {**sample("live_sweep"), "time": time})
    assert said.startswith("the event's 'time' is ") and "not an ISO 8601 time" in said


def test_live_publish_with_neither_result_nor_error_is_named(s3: Any) -> None:
    event = sample("live_publish")
    event.pop("result", None)
    event.pop("error", None)
    assert "neither an 'error' nor a 'result'" in refused("live_publish", event)


def test_record_failure_of_a_job_id_with_a_folder_removes_nothing_published(s3: Any) -> None:
    # GIVEN a published job's rung
    job = sample("record_failure")["job_id"]
    rung = [f"outputs/{job}/master.m3u8", f"outputs/{job}/360p/index.m3u8"]
    for key in rung:
        s3.put_object(Bucket=OUTPUT, Key=key, Body=b"#EXTM3U\n")
    # WHEN RecordFailure is redriven by hand with a job id that names the rung's folder
    event = {**sample("record_failure"), "job_id": f"{job}/360p"}
    said = refused("record_failure", event)
    # THEN it is refused by name, and the published job keeps every file
    assert said.startswith("the event's 'job_id' is ")
    assert sorted(written(s3)) == sorted(rung)


@pytest.mark.parametrize(
    "item",
    [
        # chunk 0 moved to another span of the source, or given a negative index
        WorkItem("video", chunk=Chunk(0, 4.0, 8.0, 0, [4.0])),
        WorkItem("video", chunk=Chunk(-1, 0.0, 4.0, -1, [0.0])),
        # an audio piece the plan has not
        WorkItem("audio", piece=AudioPiece(0, 96000, 288000, 0, [96000], False)),
    ],
    ids=["chunk-moved", "chunk-negative", "audio-piece"],
)
def test_an_item_its_jobs_plan_has_not_writes_nothing(item: WorkItem, s3: Any) -> None:
    # GIVEN a planned job (published, say), and an item step's event with an item of
    # its own making: one Plan did not plan
    job = "clip-0123456789abcdef"
    planned = plan()
    s3.put_object(Bucket=OUTPUT, Key=f"jobs/{job}/plan.json", Body=json.dumps(planned.to_dict()))
    steps: list[WorkItem] = []

    @work_item
    def step(work: Work, remaining: Deadline) -> dict[str, Any]:
        steps.append(work.item)
        work.output.put_bytes(f"{work.paths.output_prefix}360p/seg_00000.ts", b"other")
        return {}

    event = {
        "job_id": job,
        "source": {"bucket": INGEST, "key": "uploads/clip.mp4", "etag": "x"},
        "item": item.to_dict(),
    }
    # WHEN it runs
    with pytest.raises(EventError) as raised:
        step(event, Settings(output_bucket=OUTPUT), Clients(s3=s3), lambda: 60.0)
    # THEN it is refused by name before its step runs, and nothing is written (no item
    # error either, which the job's failure would read as its own)
    assert str(raised.value).startswith("the event's 'item' is not one of the items")
    assert steps == []
    assert written(s3) == [f"jobs/{job}/plan.json"]
    # AND each item the plan has runs
    items = [WorkItem("video", chunk=chunk) for chunk in planned.chunks]
    items += [WorkItem("audio", piece=piece) for piece in planned.audio_pieces]
    for item in items:
        step({**event, "item": item.to_dict()}, Settings(output_bucket=OUTPUT), Clients(s3=s3),
             lambda: 60.0)  # fmt: skip
    assert len(steps) == len(items)


SIDECAR = Sidecar("uploads/clip.en.srt", "en", "srt")


@pytest.mark.parametrize(
    "item",
    [
        # a piece of the images at other ticks (its sheets would replace the job's)
        WorkItem("images", images=ImagesPiece(0, 99)),
        WorkItem("images", images=ImagesPiece(1000, 5)),
        # the English track made of an object of the ingest bucket that is no sidecar of
        # the upload (another video's, or the upload itself), or a language its key
        # does not say (over the French track)
        WorkItem("subtitles", sidecar=replace(SIDECAR, key="uploads/other.en.srt"), etag="e"),
        WorkItem("subtitles", sidecar=replace(SIDECAR, key="uploads/clip.mp4"), etag="e"),
        WorkItem("subtitles", sidecar=replace(SIDECAR, language="fr"), etag="e"),
    ],
    ids=["images-ticks", "images-after", "subtitles-other", "subtitles-video", "subtitles-fr"],
)
def test_an_images_or_subtitles_item_its_jobs_plan_has_not_writes_nothing(
    item: WorkItem, s3: Any
) -> None:
    # GIVEN a planned job with images in one piece and an English subtitles track
    job = "clip-0123456789abcdef"
    listed = [
        WorkItem("images", images=ImagesPiece(0, 6)),
        WorkItem("subtitles", sidecar=SIDECAR, etag="e"),
    ]
    planned = plan(extras=[i.name for i in listed])
    s3.put_object(Bucket=OUTPUT, Key=f"jobs/{job}/plan.json", Body=json.dumps(planned.to_dict()))
    items = json.dumps([i.to_dict() for i in listed])
    s3.put_object(Bucket=OUTPUT, Key=f"jobs/{job}/items.json", Body=items)
    steps: list[WorkItem] = []

    @work_item
    def step(work: Work, remaining: Deadline) -> dict[str, Any]:
        steps.append(work.item)
        return {}

    event = {
        "job_id": job,
        "source": {"bucket": INGEST, "key": "uploads/clip.mp4", "etag": "x"},
        "item": item.to_dict(),
    }
    settings, clients = Settings(output_bucket=OUTPUT), Clients(s3=s3)
    # WHEN it runs, THEN it is refused by name before its step runs, writing nothing
    with pytest.raises(EventError) as raised:
        step(event, settings, clients, lambda: 60.0)
    assert str(raised.value).startswith("the event's 'item' is not one of the items")
    assert steps == []
    assert sorted(written(s3)) == [f"jobs/{job}/items.json", f"jobs/{job}/plan.json"]
    # AND each item the plan listed runs, as the Map passes it (from items.json)
    for listed_item in json.loads(items):
        step({**event, "item": listed_item}, settings, clients, lambda: 60.0)
    assert steps == listed


@pytest.mark.parametrize(
    "key", ["clips/friday-game/other-clip.json", "clips/other-game/buzzer-beater.json",
            "uploads/movie.mp4", "live/friday-game/stream.json"],
)  # fmt: skip
def test_a_clip_whose_request_is_not_its_own_is_refused(key: str, s3: Any) -> None:
    # GIVEN a clip event whose request is some other object of the ingest bucket (another
    # clip's request, which it would publish under this name; an upload, read as a request)
    event = sample("clip")
    event["request"] = {**event["request"], "bucket": INGEST, "key": key}
    s3.put_object(Bucket=INGEST, Key=key, Body=b'{"from": 0, "to": 1}')
    # WHEN it is made, or its failure recorded: THEN it is refused by name, writing nothing
    for error in (None, {"Error": "ClipRangeError", "Cause": "..."}):
        said = refused("clip", {**event, "error": error})
        assert said.startswith("the event's 'request' is ") and key in said
        assert "clips/friday-game/buzzer-beater.json" in said
        assert written(s3) == [key]
