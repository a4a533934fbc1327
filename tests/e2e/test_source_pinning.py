"""A job reads only the upload it started from, even when the key is overwritten mid-job.

The race: upload one 48 s clip, and once its Transcode Map has finished a first item,
upload a different clip to the same key. Every published segment is classified by its
content (decoded and compared with both sources), never by metadata. With versioning (the
template's default) each job reads its own version: the first asset is all first clip,
the second all second. Without (``IngestVersioning=Suspended``) every read must match the
first upload's ETag: its job fails as ``SourceChangedError`` and publishes nothing, and
the second upload's own job publishes it. The same for a change of audio alone.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from boto3.s3.transfer import TransferConfig

from tests.stack import RunningStack, vidflow_up
from workflow.local.binaries import ffmpeg_binary
from workflow.vod.jobs import JobPaths, job_id

SECONDS = 48
# Different pictures (moving test card, static bars), and different tones.
PICTURES = {"first": "testsrc2", "second": "smptebars"}
TONES = {"first": 440, "second": 1000}


def _clip(path: Path, picture: str, tone: int) -> Path:
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"{picture}=s=640x360:r=25:d={SECONDS}",
         "-f", "lavfi", "-i", f"sine=f={tone}:r=48000:d={SECONDS}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("race")
    return {
        "first": _clip(folder / "first.mp4", PICTURES["first"], TONES["first"]),
        "second": _clip(folder / "second.mp4", PICTURES["second"], TONES["second"]),
        "second-audio": _clip(folder / "tone.mp4", PICTURES["first"], TONES["second"]),
    }


def _thumb(frame: av.VideoFrame) -> np.ndarray:
    return np.asarray(frame.reformat(width=32, height=18, format="gray").to_ndarray(), float)


def _frame_at(path: Path, seconds: float) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds - 0.02:
                return _thumb(frame)
    raise AssertionError(f"no frame at {seconds} s in {path}")


def _first_frame(segment: Path) -> tuple[float, np.ndarray]:
    with av.open(str(segment)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        return float(frame.pts * stream.time_base), _thumb(frame)


def _pictures(rendition: Path, sources: dict[str, Path]) -> set[str]:
    """Which source each segment of a rendition shows: the nearer, frame against frame
    at the same time."""
    segments = sorted(rendition.glob("seg_*.ts"))
    origin, _ = _first_frame(segments[0])
    found = set()
    for segment in segments:
        at, seen = _first_frame(segment)
        distance = {
            name: float(np.abs(seen - _frame_at(path, at - origin)).mean())
            for name, path in sources.items()
        }
        found.add(min(distance, key=distance.__getitem__))
    return found


def _tone_of(segment: Path) -> int:
    """The dominant frequency of an audio segment, in Hz."""
    with av.open(str(segment)) as container:
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    spectrum = np.abs(np.fft.rfft(samples))
    return int(np.fft.rfftfreq(len(samples), 1 / 48000)[int(spectrum.argmax())])


class Race:
    """Two uploads to one key on a running stack, the second once the first's Map runs."""

    def __init__(self, stack: RunningStack) -> None:
        self.s3 = stack.client("s3")
        self.sfn = stack.client("stepfunctions")
        self.ready = stack.ready

    def upload(self, path: Path, key: str) -> str:
        self.s3.upload_file(str(path), self.ready["ingest_bucket"], key)
        etag = self.s3.head_object(Bucket=self.ready["ingest_bucket"], Key=key)["ETag"]
        return job_id(self.ready["ingest_bucket"], key, etag)

    def wait_for_a_result(self, job: str, timeout: float = 180) -> None:
        prefix = JobPaths(job).results_prefix
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = self.s3.list_objects_v2(Bucket=self.ready["output_bucket"], Prefix=prefix)
            if listed.get("KeyCount", 0):
                return
            time.sleep(0.1)
        raise AssertionError(f"{job} finished no work item in {timeout} s")

    def outcome(self, job: str, timeout: float = 300) -> dict[str, Any]:
        arn = self.ready["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                described = self.sfn.describe_execution(executionArn=arn)
            except self.sfn.exceptions.ExecutionDoesNotExist:
                described = {"status": "RUNNING"}
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.3)
        raise AssertionError(f"{job} still running after {timeout} s")

    def published(self, job: str, into: Path) -> list[Path]:
        prefix = JobPaths(job).output_prefix
        listed = self.s3.list_objects_v2(Bucket=self.ready["output_bucket"], Prefix=prefix)
        files = []
        for item in listed.get("Contents", []):
            target = into / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.ready["output_bucket"], item["Key"], str(target))
            files.append(target)
        return files

    def failure(self, job: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.ready["output_bucket"], Key=JobPaths(job).failure_key)
        return dict(json.loads(body["Body"].read()))


@pytest.fixture(scope="module", params=["Enabled", "Suspended"])
def race(request: pytest.FixtureRequest) -> Iterator[tuple[str, Race]]:
    # One item at a time: most of the job's reads come after the second upload.
    with vidflow_up(
        "--parameter", f"IngestVersioning={request.param}", "--parameter", "MapMaxConcurrency=1"
    ) as stack:
        yield request.param, Race(stack)


def _contents(race: Race, job: str, into: Path, sources: dict[str, Path]) -> dict[str, set[Any]]:
    files = race.published(job, into)
    renditions = {p.parent for p in files if p.suffix == ".ts" and p.parent.name != "audio"}
    assert renditions, f"{job} published no video"
    pictures = set().union(*(_pictures(folder, sources) for folder in renditions))
    tones = {
        round(_tone_of(p), -1) for p in files if p.suffix == ".ts" and p.parent.name == "audio"
    }
    return {"pictures": pictures, "tones": tones}


@pytest.mark.parametrize("change", ["second", "second-audio"])
def test_an_upload_replaced_mid_job_never_mixes_into_the_asset(
    race: tuple[str, Race], clips: dict[str, Path], change: str, tmp_path: Path
) -> None:
    versioning, stack = race
    key = f"uploads/race-{change}.mp4"
    sources = {"first": clips["first"], "second": clips["second"]}
    # GIVEN a first upload whose Map has finished one item
    first = stack.upload(clips["first"], key)
    stack.wait_for_a_result(first)
    # WHEN a different file lands on the same key
    second = stack.upload(clips[change], key)
    first_outcome, second_outcome = stack.outcome(first), stack.outcome(second)
    # THEN the second upload's asset is all second upload
    assert second_outcome["status"] == "SUCCEEDED", second_outcome.get("cause")
    latest = _contents(stack, second, tmp_path / "second", sources)
    expected_picture = "second" if change == "second" else "first"
    assert latest == {"pictures": {expected_picture}, "tones": {TONES["second"]}}
    if versioning == "Enabled":
        # AND the first job read its own version to the end: all first upload
        assert first_outcome["status"] == "SUCCEEDED", first_outcome.get("cause")
        old = _contents(stack, first, tmp_path / "first", sources)
        assert old == {"pictures": {"first"}, "tones": {TONES["first"]}}
    else:
        # AND the first job, which could not read its upload any more, published nothing
        assert first_outcome["status"] == "FAILED"
        assert first_outcome["error"] == "SourceChangedError", first_outcome.get("cause")
        assert stack.published(first, tmp_path / "first") == []
        assert stack.failure(first)["error"] == "SourceChangedError"


def test_an_upload_deleted_mid_job_publishes_only_where_its_version_is_kept(
    race: tuple[str, Race], clips: dict[str, Path], tmp_path: Path
) -> None:
    versioning, stack = race
    key = "uploads/race-deleted.mp4"
    # GIVEN an upload whose Map has finished one item
    job = stack.upload(clips["first"], key)
    stack.wait_for_a_result(job)
    # WHEN its key is deleted
    stack.s3.delete_object(Bucket=stack.ready["ingest_bucket"], Key=key)
    outcome = stack.outcome(job)
    if versioning == "Enabled":
        # THEN with versions kept the job reads its own to the end, as S3 serves it
        assert outcome["status"] == "SUCCEEDED", outcome.get("cause")
        old = _contents(stack, job, tmp_path / "deleted", {"first": clips["first"]})
        assert old == {"pictures": {"first"}, "tones": {TONES["first"]}}
    else:
        # THEN without, it fails by name and publishes nothing
        assert (outcome["status"], outcome.get("error")) == ("FAILED", "SourceChangedError")
        assert stack.published(job, tmp_path / "deleted") == []


def _tiny(path: Path) -> Path:
    """A 2 s 160x90 H.264 clip without sound."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x90:d=2",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def test_the_same_bytes_uploaded_again_with_other_options_get_a_job_of_their_own(
    race: tuple[str, Race], tmp_path: Path
) -> None:
    _, stack = race
    clip = _tiny(tmp_path / "again.mp4")
    key = "uploads/again.mp4"
    # GIVEN an upload published in clear
    first = stack.upload(clip, key)
    assert stack.outcome(first)["status"] == "SUCCEEDED"
    # WHEN the same bytes are uploaded again to the same key, asking to be protected
    stack.s3.upload_file(
        str(clip), stack.ready["ingest_bucket"], key,
        ExtraArgs={"Metadata": {"vidflow-encryption": "aes-128"}},
    )  # fmt: skip
    # THEN they get a job of their own (with or without versions), which protects them
    listed: list[str] = []
    deadline = time.monotonic() + 60
    while len(listed) < 2 and time.monotonic() < deadline:
        executions = stack.sfn.list_executions(stateMachineArn=stack.ready["state_machine_arn"])
        listed = [e["name"] for e in executions["executions"] if e["name"].startswith("again-")]
        time.sleep(0.3)
    (second,) = set(listed) - {first}
    assert stack.outcome(second)["status"] == "SUCCEEDED"
    files = stack.published(second, tmp_path / "second")
    playlist = next(p for p in files if p.name == "index.m3u8" and p.parent.name != "audio")
    assert "#EXT-X-KEY:METHOD=AES-128" in playlist.read_text()


def test_a_multipart_upload_starts_one_job(race: tuple[str, Race], tmp_path: Path) -> None:
    versioning, stack = race
    clip = _tiny(tmp_path / "parts.mp4")
    key = f"uploads/parts-{versioning.lower()}.mp4"
    # GIVEN a multipart upload, as aws s3 cp makes of any file past 8 MB
    bucket = stack.ready["ingest_bucket"]
    stack.s3.upload_file(str(clip), bucket, key, Config=TransferConfig(multipart_threshold=1))
    assert stack.s3.head_object(Bucket=bucket, Key=key)["ETag"].endswith('-1"')
    job = job_id(bucket, key, stack.s3.head_object(Bucket=bucket, Key=key)["ETag"])
    # WHEN its job has run (S3's announcement of it was handed on long before)
    assert stack.outcome(job)["status"] == "SUCCEEDED"
    # THEN it is the one job of the upload, with versions or without
    executions = stack.sfn.list_executions(stateMachineArn=stack.ready["state_machine_arn"])
    stem = f"parts-{versioning.lower()}-"
    assert [e["name"] for e in executions["executions"] if e["name"].startswith(stem)] == [job]
