"""``vidflow invoke``: each function with its sample event, against a running local stack."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.stack import VIDFLOW, free_port, vidflow_up

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@pytest.fixture(scope="module")
def stack(clip: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`vidflow up` in its own process, with the events' source uploaded to it, and the
    sample events pinned to that upload (a job reads only the version it started from)."""
    with vidflow_up("--parameter", "Ladder=360:800") as running:
        source = json.loads((EVENTS / "probe.json").read_text())["source"]
        s3 = running.client("s3")
        # The 30 s clip has 2 s GOPs at 30 fps: the chunk in events/ is its first.
        s3.upload_file(str(clip("h264_aac_2gop")), source["bucket"], source["key"])
        uploaded = s3.head_object(Bucket=source["bucket"], Key=source["key"])
        pinned = tmp_path_factory.mktemp("events")
        for path in EVENTS.glob("*.json"):
            event = json.loads(path.read_text())
            if isinstance(event.get("source"), dict) and "version_id" in event["source"]:
                event["source"]["etag"] = uploaded["ETag"].strip('"')
                event["source"]["version_id"] = uploaded["VersionId"]
            (pinned / path.name).write_text(json.dumps(event))
        yield {**running.ready, "events": str(pinned)}


def invoke(stack: dict[str, str], function: str, event: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *VIDFLOW,
            "invoke",
            function,
            "--event",
            str(Path(stack["events"]) / event),
            "--endpoint-url",
            stack["endpoint_url"],
            "--parameter",
            "Ladder=360:800",
            # The sample events are of a plan in 12 s chunks, which three slots leave be.
            "--parameter",
            "MapMaxConcurrency=3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def listed_items(s3: Any, stack: dict[str, str], event: dict[str, Any]) -> bytes:
    """The items the plan of ``event``'s job listed (as the Map reads them)."""
    listed = s3.get_object(Bucket=stack["output_bucket"], Key=f"jobs/{event['job_id']}/items.json")
    body: bytes = listed["Body"].read()
    return body


def test_each_step_runs_alone_with_its_sample_event(stack: dict[str, str]) -> None:
    probed = invoke(stack, "probe", "probe.json")
    assert probed.returncode == 0, probed.stderr
    assert json.loads(probed.stdout)["duration"] == pytest.approx(30.0, abs=0.05)

    planned = invoke(stack, "PlanFunction", "plan.json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    # three chunks, the audio and the images
    assert (plan["chunks"], plan["items"], plan["renditions"]) == (3, 5, ["360p"])

    chunk = invoke(stack, "transcode_chunk", "transcode-chunk.json")
    assert chunk.returncode == 0, chunk.stderr
    assert json.loads(chunk.stdout)["item"] == "video-00000"

    # The sample's audio piece is a 12 s upload's; an item must be one its job's plan has
    # (one of another would encode other times over the job's segments), so it is pinned
    # to the piece this 30 s upload's plan made, as the events are pinned to the upload.
    s3 = boto3.client(
        "s3", endpoint_url=stack["endpoint_url"], region_name=stack["region"],
        aws_access_key_id="anything", aws_secret_access_key="anything",
    )  # fmt: skip
    events = Path(stack["events"])
    sample = json.loads((events / "transcode-audio.json").read_text())
    (piece,) = [i for i in json.loads(listed_items(s3, stack, sample)) if i["kind"] == "audio"]
    refused = invoke(stack, "transcode_audio", "transcode-audio.json")
    assert json.loads(refused.stdout)["errorType"] == "EventError", refused.stderr
    (events / "transcode-audio.json").write_text(json.dumps({**sample, "item": piece}))
    audio = invoke(stack, "transcode_audio", "transcode-audio.json")
    assert audio.returncode == 0, audio.stderr
    assert json.loads(audio.stdout)["item"] == "audio-00000"

    # The sample's images piece (three ticks) is a 12 s upload's too: refused, then
    # pinned to the piece this upload's plan listed.
    sample = json.loads((events / "images.json").read_text())
    (piece,) = [i for i in json.loads(listed_items(s3, stack, sample)) if i["kind"] == "images"]
    refused = invoke(stack, "ImagesFunction", "images.json")
    assert json.loads(refused.stdout)["errorType"] == "EventError", refused.stderr
    (events / "images.json").write_text(json.dumps({**sample, "item": piece}))
    images = invoke(stack, "ImagesFunction", "images.json")
    assert images.returncode == 0, images.stderr
    assert json.loads(images.stdout)["item"] == "images"

    # Chunks 1 and 2 were never encoded: publish refuses, and says why.
    published = invoke(stack, "publish", "publish.json")
    assert published.returncode == 1
    assert json.loads(published.stdout)["errorType"] == "IncompleteOutputError"
    assert (
        published.stderr.strip().splitlines()[-1].startswith("error: IncompleteOutputError: 2 of 5")
    )

    failed = invoke(stack, "record_failure", "record-failure.json")
    assert failed.returncode == 0, failed.stderr
    assert json.loads(failed.stdout)["error"] == "NotAVideoError"


def test_a_sample_event_pinned_to_another_version_is_refused(stack: dict[str, str]) -> None:
    # GIVEN the sample Probe event as shipped: it names a version of the upload that the
    # local bucket does not hold
    done = subprocess.run(
        [*VIDFLOW, "invoke", "probe", "--event", str(EVENTS / "probe.json"),
         "--endpoint-url", stack["endpoint_url"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # THEN the step refuses to read anything else, by name
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "SourceChangedError"


def test_upload_points_a_sample_event_at_a_file_as_shipped(
    stack: dict[str, str], clip: Any, tmp_path: Path
) -> None:
    # GIVEN the shipped sample events, which name uploads nobody made
    def invoked(function: str, event: str, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VIDFLOW, "invoke", function, "--event", str(EVENTS / event), *more,
             "--endpoint-url", stack["endpoint_url"], "--parameter", "Ladder=360:800"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    s3 = boto3.client(
        "s3", endpoint_url=stack["endpoint_url"], region_name=stack["region"],
        aws_access_key_id="anything", aws_secret_access_key="anything",
    )  # fmt: skip
    source = json.loads((EVENTS / "probe.json").read_text())["source"]

    def versions() -> list[str]:
        listed = s3.list_object_versions(Bucket=source["bucket"], Prefix=source["key"])
        return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == source["key"]]

    # WHEN each is run with --upload FILE
    before = versions()
    probed = invoked("probe", "probe.json", "--upload", str(clip("half_second")))
    started = invoked("start_job", "s3-put-upload.json", "--upload", str(clip("half_second")))
    # THEN the file is where the event says, and the step reads exactly that upload
    assert probed.returncode == 0, probed.stderr
    assert json.loads(probed.stdout)["duration"] == pytest.approx(0.5, abs=0.05)
    assert started.returncode == 0, started.stderr
    (job,) = json.loads(started.stdout)["jobs"]
    assert job["key"] == "uploads/big game é.MP4"
    # AND the same file given again is that upload: steps read one, as one job's do
    again = invoked("probe", "probe.json", "--upload", str(clip("half_second")))
    assert again.returncode == 0, again.stderr
    assert len(versions()) == len(before) + 1
    # AND an event that names no upload says so
    swept = invoked("live_sweep", "scheduled-live-sweep.json", "--upload", str(clip("half_second")))
    assert swept.returncode == 2
    assert swept.stderr.strip().endswith(": no source, no S3 record")
    # AND a subtitle file goes only where an event names a sidecar
    captions = tmp_path / "game.en.srt"
    captions.write_text("1\n00:00:00,000 --> 00:00:00,400\nKick-off\n")
    misplaced = invoked("probe", "probe.json", "--upload", str(captions))
    assert misplaced.returncode == 2
    assert misplaced.stderr.strip() == (
        "error: " + str(EVENTS / "probe.json") + " names no place for game.en.srt: "
        "it takes a video for its source"
    )


def test_a_step_whose_earlier_step_never_ran_says_so(stack: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a chunk's event for a job that was never planned
    event = json.loads((Path(stack["events"]) / "transcode-chunk.json").read_text())
    (tmp_path / "orphan.json").write_text(json.dumps({**event, "job_id": "never-planned"}))
    # WHEN it is invoked
    done = subprocess.run(
        [*VIDFLOW, "invoke", "transcode_chunk", "--event", str(tmp_path / "orphan.json"),
         "--endpoint-url", stack["endpoint_url"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # THEN it fails by name, saying which record is missing and why it might be
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: MissingJobRecordError: no jobs/never-planned/plan.json: Plan has not run for "
        "this job, or the job has ended and removed its records"
    )


@pytest.mark.parametrize(
    ("function", "event", "error"),
    [
        ("probe", {}, "EventError"),
        ("start_job", {"key": "uploads/a.mp4", "size": "lots"}, "EventError"),
        # (a job id with a folder in it, which would name files of another job's)
        ("record_failure", {"job_id": "big_game-b8c40d5e93072369/360p"}, "EventError"),
    ],
)
def test_an_event_without_a_field_its_function_reads_gets_a_hint(
    function: str, event: dict[str, Any], error: str, stack: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN a hand-made event that lacks what the function reads first, or holds it as
    # a value of another kind (a size in words)
    if function == "start_job":
        event = {"Records": [{"s3": {"bucket": {"name": stack["ingest_bucket"]}, "object": event}}]}
    (tmp_path / "bare.json").write_text(json.dumps(event))
    done = subprocess.run(
        [*VIDFLOW, "invoke", function, "--event", str(tmp_path / "bare.json"),
         "--endpoint-url", stack["endpoint_url"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # THEN Lambda's answer is shown as it is, and the user is told where a whole event is
    *_, said, hint = done.stderr.strip().splitlines()
    assert done.returncode == 1 and said.startswith(f"error: {error}: "), done.stderr
    assert f"may lack a field {function} reads" in hint and "events/" in hint


def test_the_upload_trigger_runs_with_the_s3_event(stack: dict[str, str]) -> None:
    started = invoke(stack, "StartJobFunction", "s3-put-upload.json")
    assert started.returncode == 0, started.stderr
    (job,) = json.loads(started.stdout)["jobs"]
    assert job["key"] == "uploads/big game é.MP4" and job["started"] is True


def test_unknown_function_and_missing_stack_are_named(stack: dict[str, str]) -> None:
    unknown = invoke(stack, "nope", "probe.json")
    assert unknown.returncode == 2 and "no function 'nope'" in unknown.stderr
    free = free_port()
    missing = subprocess.run(
        [
            *VIDFLOW,
            "invoke",
            "probe",
            "--event",
            str(EVENTS / "probe.json"),
            "--endpoint-url",
            f"http://127.0.0.1:{free}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"error: no local stack at http://127.0.0.1:{free}; start one with vidflow up"
    )
