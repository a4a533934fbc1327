"""The reconciler's rules: which uploads get their job started, and which are left alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.live.paths import StreamPaths
from workflow.live.store import StreamTable
from workflow.local.template import Stack
from workflow.reconcile import reconcile
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.vod.jobs import JobPaths, job_id

INGEST, OUTPUT = "vidflow-ingest-test", "vidflow-output-test"
ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vidflow-vod"


class _Exceptions:
    class ExecutionAlreadyExists(Exception):
        pass

    class ExecutionDoesNotExist(Exception):
        pass


class FakeStepFunctions:
    """Executions by name, as Step Functions keeps them."""

    exceptions = _Exceptions

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        if name in self.executions:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.executions[name] = json.loads(input)
        return {"executionArn": name}

    def describe_execution(self, *, executionArn: str) -> dict[str, str]:
        name = executionArn.rsplit(":", 1)[-1]
        if name not in self.executions:
            raise self.exceptions.ExecutionDoesNotExist(name)
        return {"status": "RUNNING"}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INGEST, OUTPUT):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=INGEST, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def table(s3: Any) -> StreamTable:
    """The live table as the template declares it (inside the same mocked account)."""
    ((name, arguments),) = Stack(ROOT).tables().items()
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(TableName=name, **arguments)
    return StreamTable(client, name)


def _upload(s3: Any, key: str, body: bytes = b"video") -> str:
    s3.put_object(Bucket=INGEST, Key=key, Body=body)
    return job_id(INGEST, key, s3.head_object(Bucket=INGEST, Key=key)["ETag"])


def _settings(grace: float = 600.0) -> Settings:
    return Settings(
        output_bucket=OUTPUT,
        state_machine_arn=ARN,
        ingest_bucket=INGEST,
        reconcile_grace_seconds=grace,
    )


def test_an_upload_without_a_job_gets_one_pinned_to_its_version(s3: Any) -> None:
    # GIVEN an upload whose event never started a job, older than the grace period
    job = _upload(s3, "uploads/lost game.mp4")
    sfn = FakeStepFunctions()
    later = datetime.now(UTC) + timedelta(minutes=11)
    # WHEN the reconciler runs
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN that job starts, named as its event would have named it, pinned to its version
    assert found == {"checked": 1, "started": [job], "segments": []}
    source = sfn.executions[job]["source"]
    assert source["key"] == "uploads/lost game.mp4"
    assert source["version_id"] == s3.head_object(Bucket=INGEST, Key=source["key"])["VersionId"]
    # AND a second run starts nothing
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)["started"] == []


def test_uploads_with_a_job_a_record_or_in_grace_are_left_alone(s3: Any) -> None:
    sfn = FakeStepFunctions()
    running = _upload(s3, "uploads/running.mp4")
    sfn.executions[running] = {}
    failed = _upload(s3, "uploads/failed.mp4", b"other")
    s3.put_object(Bucket=OUTPUT, Key=JobPaths(failed).failure_key, Body=b"{}")
    published = _upload(s3, "uploads/published.mp4", b"third")
    s3.put_object(Bucket=OUTPUT, Key=JobPaths(published).master_key, Body=b"#EXTM3U")
    _upload(s3, "uploads/published.en.srt", b"1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    # WHEN the reconciler runs within the grace period of every upload, and after it
    now = datetime.now(UTC)
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=now) == {
        "checked": 0,
        "started": [],
        "segments": [],
    }
    later = now + timedelta(minutes=11)
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN nothing starts: each has a job, a failure record or an asset; sidecars start none
    assert found == {"checked": 3, "started": [], "segments": []}
    # AND uploads older than the lookback are left alone too
    much_later = now + timedelta(days=3)
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=much_later)["checked"] == 0


def test_a_live_segment_nothing_processed_gets_its_execution(s3: Any, table: StreamTable) -> None:
    # GIVEN three segments of a stream: one published, one failed, one never processed
    for sequence in (0, 1, 2):
        s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"ts %d" % sequence)
    s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    table.create("game")
    table.record_arrival("game", 0, {"duration": 4.0, "at": 1.0, "failed": False})
    s3.put_object(Bucket=OUTPUT, Key=StreamPaths("game").failure_key(1), Body=b"{}")
    sfn = FakeStepFunctions()
    settings = replace(_settings(), live_table=table.name, live_state_machine_arn=ARN + "-live")
    later = datetime.now(UTC) + timedelta(minutes=11)
    # WHEN the reconciler runs
    found = reconcile(settings, Clients(s3=s3, sfn=sfn, dynamodb=table.client), now=later)
    # THEN only the unprocessed segment's execution starts, as LiveIngest would start it
    assert found["segments"] == ["game/2"]
    ((payload),) = sfn.executions.values()
    assert (payload["stream"], payload["sequence"]) == ("game", 2)
    assert payload["source"]["key"] == "live/game/2.ts"
