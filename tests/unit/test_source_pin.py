"""Reads pinned to an object: a replaced or deleted object is named, never read instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from tests import iam_policy
from tests.records import plan
from workflow.errors import (
    SourceChangedError,
    UnsupportedInputError,
    UploadOptionError,
    VidflowError,
)
from workflow.local.template import Stack
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import FFMPEG_MAX_URL, S3_CONFIG, Bucket, Pin
from workflow.vod.jobs import JobPaths
from workflow.vod.subtitles import make_subtitles

ROOT = Path(__file__).resolve().parents[2]
INGEST, OUTPUT = "vidflow-ingest-pin", "vidflow-output-pin"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INGEST, OUTPUT):
            client.create_bucket(Bucket=bucket)
        yield client


def test_a_pinned_read_of_a_replaced_object_is_named(s3: Any) -> None:
    s3.put_object(Bucket=INGEST, Key="uploads/a.mp4", Body=b"first")
    etag = s3.head_object(Bucket=INGEST, Key="uploads/a.mp4")["ETag"].strip('"')
    ingest, pin = Bucket(s3, INGEST), Pin(None, etag)
    assert ingest.get_bytes("uploads/a.mp4", pin) == b"first"
    s3.put_object(Bucket=INGEST, Key="uploads/a.mp4", Body=b"second")
    for read in (
        lambda: ingest.get_bytes("uploads/a.mp4", pin),
        lambda: ingest.head("uploads/a.mp4", pin),
        lambda: ingest.read_range("uploads/a.mp4", 6, 4, pin),
    ):
        with pytest.raises(SourceChangedError, match="replaced or deleted"):
            read()
    s3.delete_object(Bucket=INGEST, Key="uploads/a.mp4")
    with pytest.raises(SourceChangedError):
        ingest.head("uploads/a.mp4", pin)
    # an unpinned read of a missing object stays what it is
    with pytest.raises(s3.exceptions.ClientError):
        ingest.head("uploads/a.mp4")


def _subtitles_item(paths: JobPaths, name: str, etag: str) -> dict[str, Any]:
    """The Subtitles item of ``uploads/<name>.mp4``'s job for its English sidecar, as
    planned with the sidecar's ``etag``."""
    return {
        "job_id": paths.job_id,
        "source": {"bucket": INGEST, "key": f"uploads/{name}.mp4", "etag": "x"},
        "item": {
            "kind": "subtitles",
            "sidecar": {"key": f"uploads/{name}.en.srt", "language": "en", "format": "srt"},
            "etag": etag,
        },
    }


def test_a_sidecar_replaced_after_planning_fails_its_item_by_name(s3: Any) -> None:
    # GIVEN a plan that listed a sidecar, which was then replaced
    paths = JobPaths("a-0123456789abcdef")
    s3.put_object(
        Bucket=OUTPUT,
        Key=paths.plan_key,
        Body=json.dumps(plan().to_dict()).encode(),
    )
    s3.put_object(
        Bucket=INGEST, Key="uploads/a.en.srt", Body=b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"
    )
    planned = s3.head_object(Bucket=INGEST, Key="uploads/a.en.srt")["ETag"].strip('"')
    s3.put_object(
        Bucket=INGEST, Key="uploads/a.en.srt", Body=b"1\n00:00:00,000 --> 00:00:01,000\nbye\n"
    )
    event = _subtitles_item(paths, "a", planned)
    # WHEN its Subtitles item runs, THEN it reads nothing else and says why, and what to do
    # (a subtitle upload starts no job, so no "upload that replaced it has a job")
    with pytest.raises(SourceChangedError, match="upload the video again") as raised:
        make_subtitles(event, Settings(output_bucket=OUTPUT), Clients(s3=s3), lambda: 60.0)
    assert "has a job of its own" not in str(raised.value)
    error = json.loads(
        s3.get_object(Bucket=OUTPUT, Key=paths.item_error_key("subtitles-en"))["Body"].read()
    )
    assert error["error"] == "SourceChangedError"


def test_sidecar_cues_keep_to_the_source_timeline_when_its_video_starts_late(s3: Any) -> None:
    """A sidecar is timed on its source's own timeline, whose zero is the file's start."""
    # GIVEN a source whose video starts 1 s after its audio (an MP4's leading empty edit,
    # ``ffmpeg -itsoffset 1``): a player shows its first frame at 0:01, so a cue at 0:03
    # belongs 2 s after the first frame, where the published timeline starts
    paths = JobPaths("late-0123456789abcdef")
    late = plan({"start_time": 1.0, "container_start": 0.0})
    s3.put_object(Bucket=OUTPUT, Key=paths.plan_key, Body=json.dumps(late.to_dict()).encode())
    s3.put_object(
        Bucket=INGEST, Key="uploads/late.en.srt", Body=b"1\n00:00:03,000 --> 00:00:04,000\nBEEP\n"
    )
    etag = s3.head_object(Bucket=INGEST, Key="uploads/late.en.srt")["ETag"].strip('"')
    event = _subtitles_item(paths, "late", etag)
    # WHEN its Subtitles item runs
    make_subtitles(event, Settings(output_bucket=OUTPUT), Clients(s3=s3), lambda: 60.0)
    key = f"{paths.output_prefix}subtitles/en.vtt"
    vtt = s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    # THEN cue time 0 is the first frame (72.4 s: 1.0 + TS_OFFSET + the muxer's delay) and
    # the cue is 2 s after it
    assert "X-TIMESTAMP-MAP=MPEGTS:6516000," in vtt
    assert "\n00:00:02.000 --> 00:00:03.000\nBEEP" in vtt, vtt


@pytest.mark.parametrize(
    ("listed", "deleted"),
    [([], True), ([{"Key": "uploads/a.mp4"}], False), (None, False)],
    ids=["listed-none", "listed-there", "listing-refused"],
)
def test_a_pinned_read_refused_403_is_a_deletion_where_listing_finds_no_key(
    listed: list[dict[str, str]] | None, deleted: bool
) -> None:
    # GIVEN S3's answer to a read of a missing key by a role whose ListBucket is limited to
    # prefixes: 403, not 404 (moto answers 404, so the answers are stubbed)
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
    if listed is None:
        stub.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
    else:
        request = {"Bucket": INGEST, "Prefix": "uploads/a.mp4", "MaxKeys": 1}
        stub.add_response("list_objects_v2", {"Contents": listed} if listed else {}, request)
    # THEN it is a deleted upload only where listing its key finds nothing; else the
    # denial stands as it is
    named = SourceChangedError if deleted else botocore.exceptions.ClientError
    with stub, pytest.raises(named):
        Bucket(client, INGEST).head("uploads/a.mp4", Pin(None, "e"))


@pytest.mark.parametrize(
    "function",
    ["ProbeFunction", "TranscodeChunkFunction", "TranscodeAudioFunction", "ImagesFunction",
     "SubtitlesFunction"],
)  # fmt: skip
def test_every_reader_of_uploads_may_list_the_key_it_reads(function: str) -> None:
    stack = Stack(ROOT)
    bucket = f"arn:aws:s3:::{stack.ref('IngestBucket')}"
    statements = iam_policy.statements(function, stack)
    assert iam_policy.allowed(statements, "s3:ListBucket", bucket, "uploads/game/a.mp4")


def test_a_presigned_source_url_is_sigv4_and_names_its_version(s3: Any) -> None:
    # GIVEN a function's S3 client, made as every handler makes it
    signer = boto3.client("s3", region_name="us-east-1", config=S3_CONFIG)
    # THEN the URL ffmpeg reads is SigV4 (S3 refuses SigV2 for KMS objects and new
    # buckets), for the pinned version only
    url = Bucket(signer, INGEST).presign("uploads/a.mp4", pin=Pin("v1", "e"))
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "versionId=v1" in url
    # (and its bytes as they are, whatever Content-Encoding the uploader claimed)
    assert "response-content-encoding=identity" in url
    # AND a client that would presign with SigV2 (botocore's default in us-east-1) is
    # named as the mistake it is, not handed to ffmpeg
    sigv2 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3"))
    with pytest.raises(VidflowError, match="S3_CONFIG"):
        Bucket(sigv2, INGEST).presign("uploads/a.mp4")


@pytest.mark.parametrize(("after", "created"), [("PreconditionFailed", False), (None, True)])
def test_a_create_that_s3_finds_in_conflict_is_tried_again(
    after: str | None, created: bool
) -> None:
    # GIVEN S3 answering a conditional create 409 (another conditional write of the key
    # was in flight), then what the retry finds: the other writer's object, or none
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
        if after:
            stub.add_client_error("put_object", after, http_status_code=412)
        else:
            stub.add_response("put_object", {})
        # THEN the create is decided by the retry, not failed by the conflict
        assert Bucket(client, OUTPUT).create_json("jobs/x/claim.json", {"a": 1}) is created
        stub.assert_no_pending_responses()


# A Lambda function's role credentials are temporary: every presigned URL it makes carries
# their session token, some 1,100-1,300 characters (this one: 1,200).
LAMBDA_TOKEN = "IQoJb3JpZ2luX2Vj" + "A" * 1178 + "%2F/+="


def _function_signer() -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        config=S3_CONFIG,
        aws_access_key_id="ASIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="x" * 40,
        aws_session_token=LAMBDA_TOKEN,
    )


# S3 takes keys of up to 1,024 bytes; past ~700 of them outside ASCII (each three
# characters in a URL) the URL outgrows what ffmpeg reads of one.
LONG_KEY = "uploads/" + "\u65e5" * 336 + ".mp4"


def test_a_key_whose_url_ffmpeg_would_cut_short_is_named(s3: Any) -> None:
    # GIVEN the longest key S3 takes, in ASCII, and one as long in CJK (1,020 bytes)
    ascii_key = "uploads/" + "a" * 1012 + ".mp4"
    assert len(ascii_key.encode()) == 1024 and len(LONG_KEY.encode()) == 1020
    signer = Bucket(_function_signer(), INGEST)
    pin = Pin("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", None)
    # WHEN a function presigns them for ffmpeg
    # THEN the ASCII one's URL is one ffmpeg reads whole
    url = signer.presign(ascii_key, pin=pin)
    assert len(url.split("/", 3)[3]) < FFMPEG_MAX_URL
    # AND the other is refused by name, saying what to do: ffmpeg would send only its
    # first 4,095 characters, and S3 would answer 403 to every chunk of the job
    with pytest.raises(UnsupportedInputError, match=r"1020 bytes.*shorter key"):
        signer.presign(LONG_KEY, pin=pin)


def test_probe_refuses_an_upload_whose_key_ffmpeg_cannot_read_before_any_work(
    s3: Any,
) -> None:
    from workflow.vod.probe import probe_source

    # GIVEN an upload under a key too long for ffmpeg's URL, and Probe's own credentials
    put = s3.put_object(Bucket=INGEST, Key=LONG_KEY, Body=b"\0" * 64)
    source = {"bucket": INGEST, "key": LONG_KEY, "etag": put["ETag"].strip('"'), "size": 64}
    clients = Clients(s3=_function_signer())
    settings = Settings(output_bucket=OUTPUT)
    # WHEN Probe runs / THEN the job fails there, by name, before it plans the chunks
    # that would each have failed on S3's 403
    with pytest.raises(UnsupportedInputError, match="shorter key"):
        probe_source({"job_id": "j-1", "source": source}, settings, clients, lambda: 60.0)
    assert "Contents" not in s3.list_objects_v2(Bucket=OUTPUT)


@pytest.mark.parametrize("name", ["vidflow-encription", "Vidflow_Encryption", "vidflow-packageing"])
def test_probe_refuses_an_upload_option_vidflow_does_not_have(s3: Any, name: str) -> None:
    from workflow.vod.probe import probe_source

    # GIVEN an upload whose metadata misspells an option (one asking for encryption)
    key = "uploads/game.mp4"
    put = s3.put_object(Bucket=INGEST, Key=key, Body=b"\0" * 64, Metadata={name: "aes-128"})
    source = {"bucket": INGEST, "key": key, "etag": put["ETag"].strip('"'), "size": 64}
    # WHEN Probe runs / THEN the job fails by name, saying which options there are, where
    # it published the asset in the clear, as if nothing had been asked
    with pytest.raises(UploadOptionError, match=f"{name.lower()}.*vidflow-encryption"):
        probe_source(
            {"job_id": "j-1", "source": source},
            Settings(output_bucket=OUTPUT),
            Clients(s3=_function_signer()),
            lambda: 60.0,
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=OUTPUT)


def test_probe_of_a_job_whose_asset_is_published_makes_nothing_again(s3: Any) -> None:
    from workflow.vod.probe import probe_source

    # GIVEN a job id whose asset is published: the same bytes under the same key, its
    # execution name used again 90 days on (the upload since replaced by other bytes)
    paths = JobPaths("game-0123456789abcdef")
    s3.put_object(Bucket=OUTPUT, Key=paths.master_key, Body=b"#EXTM3U\n")
    s3.put_object(Bucket=INGEST, Key="uploads/game.mp4", Body=b"other bytes")
    source = {"bucket": INGEST, "key": "uploads/game.mp4", "etag": "0123", "size": 64}
    held = boto3.client("s3", region_name="us-east-1")
    iam_policy.enforce(held, "ProbeFunction", {INGEST: "IngestBucket", OUTPUT: "OutputBucket"})
    # WHEN Probe runs under its role
    probed = probe_source(
        {"job_id": paths.job_id, "source": source},
        Settings(output_bucket=OUTPUT),
        Clients(s3=held),
        lambda: 60.0,
    )
    # THEN it says the asset is published (the state machine ends there) and writes and
    # reads nothing: not a SourceChangedError for the upload, not a probe record
    assert probed["published"] == paths.master_key and probed["probe_key"] is None
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=OUTPUT)["Contents"]] == [paths.master_key]
