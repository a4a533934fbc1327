"""The sample events in events/ have the shape the state machine really passes."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"
EVENT_FOR = {
    "StartJobFunction": "s3-put-upload.json",
    "ProbeFunction": "probe.json",
    "PlanFunction": "plan.json",
    "TranscodeAudioFunction": "transcode-audio.json",
    "TranscodeChunkFunction": "transcode-chunk.json",
    "ImagesFunction": "images.json",
    "SubtitlesFunction": "subtitles.json",
    "PublishFunction": "publish.json",
    "RecordFailureFunction": "record-failure.json",
    "LiveIngestFunction": "s3-put-live-segment.json",
    "LiveProbeFunction": "live-probe.json",
    "LiveTranscodeFunction": "live-transcode.json",
    "LivePublishFunction": "live-publish.json",
    "LiveSweepFunction": "scheduled-live-sweep.json",
    "ReconcileFunction": "scheduled-reconcile.json",
    "ClipFunction": "clip.json",
    "KeyServiceFunction": "key-service.json",
}
S3_EVENTS = {"StartJobFunction", "LiveIngestFunction"}


def shape(value: Any, key: str = "") -> Any:
    """Keys all the way down; leaves become their JSON type. A map keyed by rung name
    (which rungs depend on the source) becomes one ``<rung>`` key."""
    if isinstance(value, dict) and key == "bytes":
        return {"<rung>": sorted({shape(v) for v in value.values()})}
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return (
        "number"
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else type(value).__name__
    )


@pytest.fixture
def recorded(engine: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {}
    lock = threading.Lock()
    real = engine.lambdas.invoke

    def recording(name: str, event: Any, request_id: str | None = None) -> Any:
        function = engine.stack.find_function(name)
        with lock:
            seen.setdefault(function.logical_id, []).append(event)
        return real(name, event, request_id)

    monkeypatch.setattr(engine.lambdas, "invoke", recording)
    return seen


def test_every_function_has_a_sample_event() -> None:
    from workflow.local.template import Stack

    assert set(EVENT_FOR) == {f.logical_id for f in Stack(EVENTS.parent).functions()}


def test_sample_events_match_real_payloads(
    engine: Any, recorded: dict[str, list[Any]], clip: Any, run_job: Any, tmp_path: Path
) -> None:
    # GIVEN one job that succeeds (with a sidecar subtitle file) and one that fails,
    # recorded at every Lambda call
    engine.client("s3").put_object(
        Bucket=engine.endpoints.ingest_bucket,
        Key="uploads/recorded.en.srt",
        Body=b"1\n00:00:00,500 --> 00:00:01,500\nKick-off\n",
    )
    assert run_job(clip("long_gop"), key="uploads/recorded.mp4").status == "SUCCEEDED"
    bad = tmp_path / "recorded.mp4"
    bad.write_bytes(b"not a video")
    assert run_job(bad, key="uploads/recorded-bad.mp4").status == "FAILED"
    # AND one live segment published, and the sweep called as its schedule would
    engine.client("s3").upload_file(
        str(clip("mpegts_bframes")), engine.endpoints.ingest_bucket, "live/recorded/0.ts"
    )
    deadline = time.monotonic() + 120
    while "LivePublishFunction" not in recorded and time.monotonic() < deadline:
        time.sleep(0.2)
    # AND a clip of it asked for
    engine.client("s3").put_object(
        Bucket=engine.endpoints.ingest_bucket,
        Key="clips/recorded/sample.json",
        Body=b'{"from": 0.5, "to": 1.0}',
    )
    while "ClipFunction" not in recorded and time.monotonic() < deadline:
        time.sleep(0.2)
    for scheduled in ("LiveSweepFunction", "ReconcileFunction"):
        arn = engine.functions[scheduled].arn
        engine.invoke(arn, engine.scheduled_event(arn))
    # AND a player asking the key service for a key with a token that is not one
    key_url = engine.stack.function_urls["KeyServiceFunction"]
    asked = urllib.request.Request(
        f"{key_url}keys/recorded-job?token=v1.not.signed",
        headers={"Origin": "https://player.example.com", "User-Agent": "Mozilla/5.0"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(asked, timeout=30)
    assert refused.value.code == 403
    # THEN each sample event has exactly the shape of a real payload for its function
    for function, name in EVENT_FOR.items():
        sample = json.loads((EVENTS / name).read_text())
        real_shapes = [shape(event) for event in recorded[function]]
        if function in S3_EVENTS:
            real = real_shapes[0]["Records"][0]["s3"]
            assert set(real) <= set(shape(sample)["Records"][0]["s3"]), function
            assert set(real["object"]) <= set(shape(sample)["Records"][0]["s3"]["object"])
            continue
        assert shape(sample) in real_shapes, f"{name} does not match what {function} receives"
