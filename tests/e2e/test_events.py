"""The sample events in events/ have the shape the state machine really passes."""

from __future__ import annotations

import json
import threading
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
    "PublishFunction": "publish.json",
    "RecordFailureFunction": "record-failure.json",
}


def shape(value: Any) -> Any:
    """Keys all the way down; leaves become their JSON type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
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
    real = engine.host.invoke

    def recording(name: str, event: Any) -> Any:
        function = engine.host.find(name)
        with lock:
            seen.setdefault(function.logical_id, []).append(event)
        return real(name, event)

    monkeypatch.setattr(engine.host, "invoke", recording)
    return seen


def test_every_function_has_a_sample_event() -> None:
    from workflow.template import Stack

    assert set(EVENT_FOR) == {f.logical_id for f in Stack(EVENTS.parent).functions()}


def test_sample_events_match_real_payloads(
    recorded: dict[str, list[Any]], clip: Any, run_job: Any, tmp_path: Path
) -> None:
    # GIVEN one job that succeeds and one that fails, recorded at every Lambda call
    assert run_job(clip("long_gop"), key="uploads/recorded.mp4").status == "SUCCEEDED"
    bad = tmp_path / "recorded.mp4"
    bad.write_bytes(b"not a video")
    assert run_job(bad, key="uploads/recorded-bad.mp4").status == "FAILED"
    # THEN each sample event has exactly the shape of a real payload for its function
    for function, name in EVENT_FOR.items():
        sample = json.loads((EVENTS / name).read_text())
        real_shapes = [shape(event) for event in recorded[function]]
        if function == "StartJobFunction":
            real = real_shapes[0]["Records"][0]["s3"]
            assert set(real) <= set(shape(sample)["Records"][0]["s3"]), function
            assert set(real["object"]) <= set(shape(sample)["Records"][0]["s3"]["object"])
            continue
        assert shape(sample) in real_shapes, f"{name} does not match what {function} receives"
