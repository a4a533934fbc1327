"""Job identity and where a job's objects live."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import botocore.exceptions

from workflow.errors import IncompleteOutputError, MissingJobRecordError
from workflow.storage import Bucket

UPLOAD_PREFIX = "uploads/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution ``name`` of a state machine."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def job_id(bucket: str, key: str, etag: str, version_id: str | None = None) -> str:
    """A Step Functions execution name unique to this object version.

    The same bucket, key and ETag always give the same id, so a duplicate S3 event
    meets ``ExecutionAlreadyExists``; new content under the same key gets a new id. The
    same content uploaded again (a ``version_id`` of its own) gets one with it.
    """
    name = f"{bucket}\0{key}\0{etag.strip(chr(34))}"
    if version_id:
        name += f"\0{version_id}"
    digest = hashlib.sha256(name.encode()).hexdigest()
    # Begins with a letter or digit, as the key service's path and a token's asset do.
    stem = _UNSAFE.sub("_", PurePosixPath(key).stem).strip("_-")[:40].rstrip("_-") or "upload"
    return f"{stem}-{digest[:16]}"


@dataclass(frozen=True)
class JobPaths:
    """Keys of one job in the output bucket."""

    job_id: str

    @property
    def output_prefix(self) -> str:
        return f"outputs/{self.job_id}/"

    @property
    def scratch_prefix(self) -> str:
        return f"jobs/{self.job_id}/"

    @property
    def probe_key(self) -> str:
        return f"{self.scratch_prefix}probe.json"

    @property
    def plan_key(self) -> str:
        return f"{self.scratch_prefix}plan.json"

    @property
    def items_key(self) -> str:
        return f"{self.scratch_prefix}items.json"

    @property
    def analysis_items_key(self) -> str:
        return f"{self.scratch_prefix}analysis-items.json"

    def result_key(self, item: str) -> str:
        return f"{self.scratch_prefix}results/{item}.json"

    def item_error_key(self, item: str) -> str:
        return f"{self.scratch_prefix}errors/{item}.json"

    @property
    def errors_prefix(self) -> str:
        return f"{self.scratch_prefix}errors/"

    @property
    def results_prefix(self) -> str:
        return f"{self.scratch_prefix}results/"

    def progress_key(self, item: str) -> str:
        """How far an item's encode is while it runs (``workflow.vod.progress``)."""
        return f"{self.progress_prefix}{item}.json"

    @property
    def progress_prefix(self) -> str:
        return f"{self.scratch_prefix}progress/"

    @property
    def failure_key(self) -> str:
        return f"failures/{self.job_id}.json"

    @property
    def master_key(self) -> str:
        return f"{self.output_prefix}master.m3u8"

    @property
    def dash_key(self) -> str:
        return f"{self.output_prefix}manifest.mpd"

    @property
    def manifest_key(self) -> str:
        return f"{self.output_prefix}manifest.json"


def read_job_record(output: Bucket, key: str, writer: str) -> Any:
    """The JSON record ``writer`` (a step) left at ``key`` for the steps after it."""
    try:
        return output.get_json(key)
    except botocore.exceptions.ClientError as exc:
        if not output.missing(exc, key):
            raise
        raise MissingJobRecordError(
            f"no {key}: {writer} has not run for this job, or the job has ended and "
            "removed its records"
        ) from None


def require_results(output: Bucket, paths: JobPaths, items: list[str]) -> None:
    """Raise ``IncompleteOutputError`` unless every work item left its result record: an
    item that failed left an error record instead, which RecordFailure then names."""
    present = {PurePosixPath(k).stem for k in output.keys(paths.results_prefix)}
    missing = [item for item in items if item not in present]
    if missing:
        raise IncompleteOutputError(
            f"{len(missing)} of {len(items)} work items have no result "
            f"(first: {missing[0]}); nothing was published"
        )
