"""``vidflow invoke``'s event file: one that is no JSON object, or names no object for
``--upload`` to put a file at, is a usage error before any function runs."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.test_start_jobs import ARN, FakeStepFunctions
from workflow.cli import invoke
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main
from workflow.runtime import Clients, event_time
from workflow.settings import Settings
from workflow.vod.start import start_jobs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "kind"), [("[]", "an array"), ('"probe"', "a string"),
                                            ("7", "a number"), ("null", "null"),
                                            ("true", "a boolean")])  # fmt: skip
def test_an_event_that_is_no_json_object_is_refused_by_name(
    text: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an event file holding JSON that is not an object
    event = tmp_path / "event.json"
    event.write_text(text)
    # WHEN it is invoked (at a port where no stack runs: it is refused before that look)
    status = main(
        ["invoke", "probe", "--event", str(event), "--endpoint-url", "http://127.0.0.1:9"]
    )
    # THEN it is a usage error that says what an event is, not the handler's TypeError
    assert status == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"error: {event} holds {kind}; an event is a JSON object (the samples in "
        "events/ show each function's)"
    )


@pytest.mark.parametrize(("name", "what"), [("missing.mp4", "no such file"), (".", "a folder")])
def test_an_upload_that_is_no_file_is_refused_by_name(
    name: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sample event and an --upload that names no file (a typo, the wrong folder)
    event = tmp_path / "event.json"
    event.write_text('{"job_id": "game-0123456789abcdef", "source": {"key": "uploads/g.mp4"}}')
    upload = tmp_path / name
    # WHEN it is invoked (at a port where no stack runs: it is refused before that look)
    status = main(["invoke", "probe", "--event", str(event), "--upload", str(upload),
                   "--endpoint-url", "http://127.0.0.1:9"])  # fmt: skip
    # THEN it is a usage error that names the file, not an internal FileNotFoundError
    assert status == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"error: --upload {upload}: {what}; give a file to upload"
    )


class _Stack:
    """A stack whose ingest bucket is all ``--upload`` asks of it before uploading."""

    def outputs(self) -> dict[str, str]:
        return {"IngestBucketName": "ingest"}


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [{}]},
        {"Records": [{"s3": {}}]},
        {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]},
        {"Records": "uploads/game.mp4"},
        {"source": {"bucket": "b"}},
        {"source": {"key": 5}},
        {"source": {"key": ""}},  # (S3 refused it: ParamValidationError, an internal error)
        {"source": {"key": "k" * 1025}},
        {"job_id": "game-0123456789abcdef"},
    ],
)
def test_upload_into_an_event_that_names_no_object_is_refused_by_name(event: object) -> None:
    # GIVEN a hand-made event with no usable source key or S3 record / WHEN --upload is
    # given a video for it / THEN it names no place (a usage error), never the KeyError
    # or TypeError of reading it, and nothing is uploaded (no S3 client is given)
    assert invoke._with_upload(event, Path("game.mp4"), _Stack(), s3=None) is None
    assert invoke._places(event) == "no source, no S3 record"


def test_upload_of_subtitles_into_an_event_whose_sidecar_has_no_key_is_refused() -> None:
    event = {"item": {"sidecar": {"key": 5, "format": "srt"}}}
    assert invoke._with_upload(event, Path("game.en.srt"), _Stack(), s3=None) is None


@mock_aws
@pytest.mark.parametrize("versioning", ["Enabled", "Suspended"])
def test_an_upload_into_the_sample_s3_event_is_one_job_with_its_own_event(
    versioning: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ingest")
    s3.put_bucket_versioning(Bucket="ingest", VersioningConfiguration={"Status": versioning})
    video = tmp_path / "game.mp4"
    video.write_bytes(b"video")
    sample = json.loads((ROOT / "events" / "s3-put-upload.json").read_text())
    # GIVEN the sample S3 event, pointed at a file uploaded with --upload
    (invoked,) = invoke._with_upload(sample, video, _Stack(), s3)["Records"]
    uploaded = invoked["s3"]["object"]
    key = urllib.parse.unquote_plus(uploaded["key"])
    head = s3.head_object(Bucket="ingest", Key=key)
    # THEN it names the upload, not the sample's version, PUT (sequencer) or time
    assert uploaded["eTag"] == head["ETag"].strip('"') and uploaded["size"] == 5
    assert uploaded.get("versionId") == (head["VersionId"] if versioning == "Enabled" else None)
    assert "sequencer" not in uploaded
    assert event_time(invoked["eventTime"]) == head["LastModified"]
    # AND StartJob takes it and the upload's own event (its own sequencer) as one upload
    own = json.loads(json.dumps(invoked))
    own["s3"]["object"]["sequencer"] = "0065A1B2C3D4E5F601"
    sfn = FakeStepFunctions()
    started = start_jobs([invoked, own], Settings(state_machine_arn=ARN), Clients(s3=s3, sfn=sfn))
    assert [s["started"] for s in started] == [True, False] and len(sfn.calls) == 1
