"""start_jobs: S3 upload events become Step Functions executions, at most once each."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from tests.logs import own_log
from workflow import metrics
from workflow.errors import TransientError
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Pin
from workflow.vod import start as start_module
from workflow.vod.jobs import job_id
from workflow.vod.start import start_jobs

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vidflow-vod"
BUCKET = "vidflow-ingest-start"


class _Exceptions:
    class ExecutionAlreadyExists(Exception):
        """What boto3's Step Functions client raises for a reused execution name."""


class FakeStepFunctions:
    """Records executions and refuses a name already used, like Step Functions, except
    (like it, too) a start with the name and input of an execution still running, which
    it answers with that execution."""

    exceptions = _Exceptions

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.status = "RUNNING"

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        if self.fail_with is not None:
            raise self.fail_with
        arn = {"executionArn": f"{ARN.replace(':stateMachine:', ':execution:')}:{name}"}
        for call in self.calls:
            if call["name"] == name:
                if self.status == "RUNNING" and call["input"] == input:
                    return arn
                raise self.exceptions.ExecutionAlreadyExists(f"Execution Already Exists: '{name}'")
        self.calls.append({"stateMachineArn": stateMachineArn, "name": name, "input": input})
        return arn

    def describe_execution(self, *, executionArn: str) -> dict[str, str]:
        (call,) = [c for c in self.calls if executionArn.endswith(f":{c['name']}")]
        return {"executionArn": executionArn, "input": call["input"], "status": self.status}


def record(
    key: str, etag: str = "0123abcd", size: int = 1024, bucket: str = BUCKET
) -> dict[str, Any]:
    """An S3 ObjectCreated record as the event delivers it (key URL-encoded)."""
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-30T12:00:00.123Z",
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": etag},
        },
    }


def run(records: list[dict[str, Any]], sfn: FakeStepFunctions) -> list[dict[str, Any]]:
    return start_jobs(records, Settings(state_machine_arn=ARN), Clients(s3=None, sfn=sfn))


def test_an_upload_starts_one_execution_with_the_source() -> None:
    # GIVEN one upload event
    sfn = FakeStepFunctions()

    # WHEN jobs are started
    started = run([record("uploads/clip.mp4", etag="9e107d9d", size=5_000_000)], sfn)

    # THEN one execution of the configured state machine runs, named by the job id and
    # carrying the object's bucket, key, ETag and size
    (call,) = sfn.calls
    expected_id = job_id(BUCKET, "uploads/clip.mp4", "9e107d9d")
    assert call["stateMachineArn"] == ARN
    assert call["name"] == expected_id
    given = json.loads(call["input"])
    assert len(given.pop("start_token")) == 32
    assert given == {
        "job_id": expected_id,
        "source": {
            "bucket": BUCKET,
            "key": "uploads/clip.mp4",
            "etag": "9e107d9d",
            "version_id": None,
            "size": 5_000_000,
            "uploaded_at": "2026-11-30T12:00:00.123Z",
        },
    }
    assert started == [{"job_id": expected_id, "key": "uploads/clip.mp4", "started": True}]


def test_a_versioned_upload_pins_its_job_to_its_version() -> None:
    # GIVEN an upload to a bucket that keeps versions (its event names the version)
    sfn = FakeStepFunctions()
    event = record("uploads/clip.mp4", etag="9e107d9d")
    event["s3"]["object"]["versionId"] = "3HL4kqtJlcpXroDTDmJ"
    # WHEN its job starts
    run([event], sfn)
    # THEN the job's every read is pinned to that version, the ETag kept beside it
    source = json.loads(sfn.calls[0]["input"])["source"]
    assert (source["version_id"], source["etag"]) == ("3HL4kqtJlcpXroDTDmJ", "9e107d9d")
    pin = Pin.of(source)
    assert pin.params() == {"VersionId": "3HL4kqtJlcpXroDTDmJ"}
    assert pin.http_headers() is None


def test_an_unversioned_upload_pins_its_reads_to_its_etag() -> None:
    pin = Pin.of({"etag": "9e107d9d", "version_id": None})
    assert pin.params() == {"IfMatch": '"9e107d9d"'}
    assert pin.http_headers() == 'If-Match: "9e107d9d"\r\n'
    # an object written while versioning was off has the version id "null": not a pin
    assert Pin.of({"etag": "9e107d9d", "version_id": "null"}) == pin


def test_url_encoded_keys_are_decoded() -> None:
    # GIVEN a key as S3 events encode it: '+' for space, %XX for UTF-8 bytes
    sfn = FakeStepFunctions()

    # WHEN jobs are started
    (result,) = run([record("uploads/my+clip%C3%A9.MP4")], sfn)

    # THEN the execution is for the real key
    decoded = "uploads/my clip\u00e9.MP4"
    assert result["key"] == decoded
    assert json.loads(sfn.calls[0]["input"])["source"]["key"] == decoded
    assert sfn.calls[0]["name"] == job_id(BUCKET, decoded, "0123abcd")


def test_an_encoded_plus_stays_a_plus() -> None:
    # GIVEN a key with a literal '+', which S3 sends as %2B
    sfn = FakeStepFunctions()

    # WHEN jobs are started
    (result,) = run([record("uploads/a%2Bb.mp4")], sfn)

    # THEN the key keeps its '+'
    assert result["key"] == "uploads/a+b.mp4"


@pytest.mark.parametrize(
    "key",
    [
        "outputs/clip.mp4",
        "clip.mp4",
        "Uploads/clip.mp4",
        "uploads",
        "uploads/",
        "uploads/holiday/",
        "uploads/holiday%2F",
        "jobs/uploads/clip.mp4",
    ],
)
def test_keys_outside_uploads_and_folder_markers_are_ignored(key: str) -> None:
    # GIVEN an event for something that is not an uploaded file
    sfn = FakeStepFunctions()

    # WHEN jobs are started
    started = run([record(key)], sfn)

    # THEN nothing starts
    assert started == []
    assert sfn.calls == []


@pytest.mark.parametrize(("size", "said"), [(0, False), (134_000, True)])
def test_a_file_under_a_folders_name_starts_nothing_and_is_said(
    size: int, said: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a folder a console made (empty), or a video PUT under a key ending in /
    sfn = FakeStepFunctions()
    with caplog.at_level(logging.WARNING):
        started = run([record("uploads/final.mp4/", size=size)], sfn)
    # THEN neither starts a job, and the video is named in the log, not passed over
    assert started == [] and sfn.calls == []
    named = [r.getMessage() for r in caplog.records if "uploads/final.mp4/" in r.getMessage()]
    assert named == (
        ["uploads/final.mp4/ starts no job: a key ending in / names a folder, not a video; "
         "upload the video under a file name"] if said else []
    )  # fmt: skip


def test_an_event_for_a_bucket_the_stack_does_not_own_starts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = own_log(monkeypatch, start_module, "start_jobs.foreign")
    # GIVEN a record naming another bucket (hand-made, or a notification misrouted): its
    # job could not read the upload (no function may) and would fail as AccessDenied
    sfn = FakeStepFunctions()
    settings = Settings(state_machine_arn=ARN, ingest_bucket=BUCKET)
    foreign = [record("uploads/clip.mp4", bucket=b) for b in ("someone-else", "vidflow-output")]

    # WHEN jobs are started
    started = start_jobs(foreign, settings, Clients(s3=None, sfn=sfn))

    # THEN nothing starts, as for a key outside uploads/, and the log says why; the
    # stack's own bucket still does
    assert (started, sfn.calls) == ([], [])
    skips = [r.getMessage() for r in kept if r.levelno == logging.WARNING]
    assert skips == ["uploads/clip.mp4 starts no job: not this stack's ingest bucket"] * 2
    (own,) = start_jobs([record("uploads/clip.mp4")], settings, Clients(s3=None, sfn=sfn))
    assert own["started"]


@pytest.mark.parametrize(
    "name", ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated", "ObjectRestore:Completed"]
)
def test_an_event_of_anything_but_a_created_object_starts_nothing(name: str) -> None:
    # GIVEN a record of a removed (or restored) upload: hand-made, or from a notification
    # of more than ObjectCreated; its job would fail as "replaced or deleted while it ran"
    sfn = FakeStepFunctions()
    removed = record("uploads/clip.mp4")
    removed["eventName"] = name

    # WHEN jobs are started
    started = run([removed], sfn)

    # THEN nothing starts
    assert (started, sfn.calls) == ([], [])


def test_a_duplicate_event_starts_nothing_new() -> None:
    # GIVEN the same upload delivered twice (S3 delivers at least once)
    sfn = FakeStepFunctions()
    event = record("uploads/clip.mp4", etag="9e107d9d")

    # WHEN jobs are started for both
    started = run([event, event], sfn)

    # THEN one execution runs and the second is reported as not started, same job id
    assert len(sfn.calls) == 1
    assert [s["started"] for s in started] == [True, False]
    assert started[0]["job_id"] == started[1]["job_id"]


def step_functions() -> tuple[Any, str]:
    """moto's Step Functions (inside ``mock_aws``), whose executions stay RUNNING, and a
    state machine's ARN."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name="vidflow-vod",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    return sfn, arn


def test_a_duplicate_delivered_while_its_job_runs_is_not_counted_as_a_start() -> None:
    # GIVEN Step Functions itself (moto's): it answers a start with the name and input of
    # a running execution as if it had started it (and where another test has left moto's
    # interpreter ending executions at once, refuses it: either way, not a second start)
    with mock_aws():
        sfn, arn = step_functions()
        settings, clients = Settings(state_machine_arn=arn), Clients(s3=None, sfn=sfn)
        metrics.metrics.clear_metrics()
        event = record("uploads/clip.mp4", etag="9e107d9d")
        event["s3"]["object"]["sequencer"] = "0055AED6DCD90281E5"

        # WHEN S3 delivers the upload's event again while its job runs, in the same batch
        # and in a later invocation
        started = start_jobs([event, event], settings, clients)
        started += start_jobs([event], settings, clients)

        # THEN one execution runs, and only the first delivery reports (and counts) a start
        assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    assert [s["started"] for s in started] == [True, False, False]
    assert metrics.metrics.metric_set[metrics.JOBS_STARTED]["Value"] == [1.0]


def test_lambda_retrying_an_invocation_counts_the_starts_it_made_before_it_failed() -> None:
    # GIVEN a batch of two uploads whose second start is throttled: the invocation fails
    # after starting the first, and counts nothing
    # (the fake, not moto: whether moto's execution still runs at the retry depends on
    # whether another test left its interpreter running executions)
    sfn = FakeStepFunctions()
    first, second = record("uploads/a.mp4", etag="aaaa"), record("uploads/b.mp4", etag="bbbb")
    first["s3"]["object"]["sequencer"], second["s3"]["object"]["sequencer"] = "01", "02"
    tries = []
    start = sfn.start_execution

    def throttled_once(**kwargs: Any) -> Any:
        tries.append(kwargs["name"])
        if len(tries) == 2:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                "StartExecution",
            )
        return start(**kwargs)

    sfn.start_execution = throttled_once  # type: ignore[method-assign]
    settings, clients = Settings(state_machine_arn=ARN), Clients(s3=None, sfn=sfn)
    metrics.metrics.clear_metrics()
    with pytest.raises(TransientError):
        start_jobs([first, second], settings, clients, invocation="request-1")
    assert metrics.JOBS_STARTED not in metrics.metrics.metric_set
    # WHEN Lambda retries the invocation (under the same request id), the first job running
    started = start_jobs([first, second], settings, clients, invocation="request-1")
    # AND S3 delivers the batch again (another invocation)
    again = start_jobs([first, second], settings, clients, invocation="request-2")
    # THEN the retry reports and counts both starts, and the new delivery neither
    assert len(sfn.calls) == 2
    assert [s["started"] for s in started] == [True, True]
    assert [s["started"] for s in again] == [False, False]
    assert metrics.metrics.metric_set[metrics.JOBS_STARTED]["Value"] == [2.0]


def test_a_duplicate_in_a_later_invocation_is_reported_not_raised() -> None:
    # GIVEN an execution already started for an upload
    sfn = FakeStepFunctions()
    run([record("uploads/clip.mp4")], sfn)

    # WHEN the same event arrives in a later invocation
    started = run([record("uploads/clip.mp4")], sfn)

    # THEN it returns normally, reporting started=False
    assert started == [
        {
            "job_id": job_id(BUCKET, "uploads/clip.mp4", "0123abcd"),
            "key": "uploads/clip.mp4",
            "started": False,
        }
    ]


def versions(*metadata: dict[str, str]) -> tuple[Any, list[dict[str, Any]]]:
    """A versioned ingest bucket (moto) with the same bytes uploaded once per
    ``metadata``, and each upload's S3 event record (its version, the same ETag)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    records = []
    for options in metadata:
        put = s3.put_object(Bucket=BUCKET, Key="uploads/clip.mp4", Body=b"video", Metadata=options)
        records.append(record("uploads/clip.mp4", etag=put["ETag"].strip('"')))
        records[-1]["s3"]["object"]["versionId"] = put["VersionId"]
    return s3, records


def started_with(
    records: list[dict[str, Any]], sfn: FakeStepFunctions, s3: Any
) -> list[dict[str, Any]]:
    return start_jobs(records, Settings(state_machine_arn=ARN), Clients(s3=s3, sfn=sfn))


@mock_aws
@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_the_same_upload_again_makes_no_second_job(status: str) -> None:
    # GIVEN the same file uploaded twice with the same options (a new version, the same
    # ETag), the first upload's job running or published
    sfn = FakeStepFunctions()
    # (asked the way upload_option reads them: any case, spaces around)
    s3, (first, again) = versions({"vidflow-packaging": "cmaf"}, {"Vidflow-Packaging": " CMAF"})
    assert started_with([first], sfn, s3)[0]["started"]
    sfn.status = status
    # WHEN the second upload's event comes
    (second,) = started_with([again], sfn, s3)
    # THEN it is the same upload: one execution, one asset
    assert second == {"job_id": sfn.calls[0]["name"], "key": "uploads/clip.mp4", "started": False}
    assert len(sfn.calls) == 1


@mock_aws
@pytest.mark.parametrize(
    "options",
    [
        {"vidflow-packaging": "cmaf"},
        # (misspelt: its own job, whose Probe refuses it by name, never the earlier asset)
        {"vidflow_encryption": "aes-128"},
        {"vidflowencryption": "aes-128"},
    ],
)
def test_the_same_bytes_uploaded_again_with_other_options_start_a_job_of_their_own(
    options: dict[str, str],
) -> None:
    # GIVEN one upload, its event delivered twice, then the same bytes uploaded again
    # with other options in their metadata: a new version, the same ETag
    sfn = FakeStepFunctions()
    s3, (first, again) = versions({}, options)
    # WHEN jobs are started for all three events
    started = started_with([first, first, again], sfn, s3)
    # THEN the duplicate starts nothing, and the new upload its own job
    assert [s["started"] for s in started] == [True, False, True]
    assert len({s["job_id"] for s in started}) == 2
    assert [json.loads(c["input"])["source"]["version_id"] for c in sfn.calls] == [
        first["s3"]["object"]["versionId"],
        again["s3"]["object"]["versionId"],
    ]
    # AND its own duplicate starts nothing either
    assert [s["started"] for s in started_with([again], sfn, s3)] == [False]


@mock_aws
@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_the_same_bytes_uploaded_again_run_a_job_that_published_nothing_again(
    status: str,
) -> None:
    # GIVEN an upload whose job ended without publishing
    sfn = FakeStepFunctions()
    s3, (first, again) = versions({}, {})
    started_with([first], sfn, s3)
    sfn.status = status
    # WHEN the same bytes are uploaded again, with the same options
    (second,) = started_with([again], sfn, s3)
    # THEN they get a job of their own
    assert second["started"] and second["job_id"] != sfn.calls[0]["name"]


@mock_aws
@pytest.mark.parametrize(("answer", "both"), [("403", False), ("404", False), ("403", True)])
def test_the_same_bytes_uploaded_again_after_the_first_version_expired(
    answer: str, both: bool
) -> None:
    # GIVEN an upload whose job published, then its version gone (the lifecycle expires
    # noncurrent versions): S3 answers its HEAD with 403 to StartJob, which may not list
    # (or, a role or bucket policy gone wrong, refuses the new version's HEAD too)
    sfn = FakeStepFunctions()
    s3, (first, again) = versions({}, {})
    started_with([first], sfn, s3)
    sfn.status = "SUCCEEDED"
    head = s3.head_object

    def gone(**kwargs: Any) -> Any:
        if both or kwargs.get("VersionId") == first["s3"]["object"]["versionId"]:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": answer, "Message": "Forbidden"}}, "HeadObject"
            )
        return head(**kwargs)

    s3.head_object = gone
    # WHEN the same bytes are uploaded again
    (second,) = started_with([again], sfn, s3)
    # THEN StartJob does not fail (it would on every retry and redrive): with nothing to
    # compare its options with, the upload gets a job of its own (never silently none)
    assert second["started"] and second["job_id"] != sfn.calls[0]["name"]


def test_the_same_bytes_put_again_without_versions_start_a_job_of_their_own() -> None:
    # GIVEN versioning suspended: one upload, its event delivered twice, then the same
    # bytes put again (say, to add vidflow-encryption): no version, another sequencer
    sfn = FakeStepFunctions()
    first, again = (record("uploads/clip.mp4", etag="9e107d9d") for _ in range(2))
    first["s3"]["object"]["sequencer"] = "0055AED6DCD90281E5"
    again["s3"]["object"]["sequencer"] = "0055AED6DCD90281F1"
    # WHEN jobs are started for all three events
    started = run([first, first, again], sfn)
    # THEN the duplicate starts nothing, and the new PUT its own job
    assert [s["started"] for s in started] == [True, False, True]
    assert len({s["job_id"] for s in started}) == 2
    assert [json.loads(c["input"])["sequencer"] for c in sfn.calls] == [
        "0055AED6DCD90281E5", "0055AED6DCD90281F1"
    ]  # fmt: skip
    # AND its own duplicate starts nothing either
    assert [s["started"] for s in run([again], sfn)] == [False]


def test_new_content_under_the_same_key_starts_a_new_job() -> None:
    # GIVEN the same key uploaded twice with different content (different ETags)
    sfn = FakeStepFunctions()

    # WHEN jobs are started
    started = run(
        [record("uploads/clip.mp4", etag="aaa"), record("uploads/clip.mp4", etag="bbb")], sfn
    )

    # THEN both start, as different jobs
    assert [s["started"] for s in started] == [True, True]
    assert len({s["job_id"] for s in started}) == 2


def test_a_batch_mixes_started_skipped_and_ignored() -> None:
    # GIVEN a batch of records: two uploads, a folder marker, an output
    sfn = FakeStepFunctions()
    records = [
        record("uploads/a.mp4"),
        record("uploads/folder/"),
        record("outputs/x/master.m3u8"),
        record("uploads/b.mov"),
    ]

    # WHEN jobs are started
    started = run(records, sfn)

    # THEN only the two uploads start, in order
    assert [s["key"] for s in started] == ["uploads/a.mp4", "uploads/b.mov"]
    assert len(sfn.calls) == 2


def test_throttling_becomes_a_transient_error() -> None:
    # GIVEN Step Functions throttling the call
    throttled = botocore.exceptions.ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
    )
    sfn = FakeStepFunctions(fail_with=throttled)

    # WHEN / THEN the failure is one the caller retries
    with pytest.raises(TransientError):
        run([record("uploads/clip.mp4")], sfn)


def test_a_permanent_aws_error_is_not_retried() -> None:
    # GIVEN Step Functions refusing the call for good
    denied = botocore.exceptions.ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": "no"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "StartExecution",
    )
    sfn = FakeStepFunctions(fail_with=denied)

    # WHEN / THEN the original error surfaces, not a TransientError
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        run([record("uploads/clip.mp4")], sfn)
    assert not isinstance(caught.value, TransientError)


def test_each_put_again_without_versions_has_its_own_job_when_events_say_null() -> None:
    # GIVEN versioning suspended and events that name the objects' version "null" (as the
    # reconciler's records do): one upload and the same bytes put twice again
    sfn = FakeStepFunctions()
    puts = [record("uploads/clip.mp4", etag="9e107d9d") for _ in range(3)]
    for n, put in enumerate(puts):
        put["s3"]["object"]["versionId"] = "null"
        put["s3"]["object"]["sequencer"] = f"0055AED6DCD90281E{n}"
    # WHEN jobs are started for the three events
    started = run(puts, sfn)
    # THEN each PUT has a job of its own, told apart by its sequencer, not by "null"
    assert [s["started"] for s in started] == [True, True, True]
    assert len({s["job_id"] for s in started}) == 3
