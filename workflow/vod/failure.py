"""RecordFailure: a failed job leaves one failure record and no partial output."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from workflow import events, metrics
from workflow.failures import FailureRecord
from workflow.keys.store import KeyStore
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.jobs import JobPaths
from workflow.vod.records import WorkItem

# Failures that stand for a failed work item; the item's own error is more useful.
_MAP_LEVEL_ERRORS = {
    "IncompleteOutputError",
    "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed",
    "States.Runtime",
}


@transient_aws_errors()
def record_failure(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Write ``failures/<job>.json`` and remove any partial output of the job.

    A job whose master playlist is written is published, whatever failed after it (its
    announcement): it gets no failure record and no ``Job Failed``, and keeps every file;
    the execution fails naming what failed.
    """
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    failure = FailureRecord.of(
        {"job_id": paths.job_id}, event.get("error") or {}, event.get("source"), clients
    )
    if output.exists(paths.master_key):
        return {"error": failure.error, "cause": failure.cause, "failure_key": None}
    rerun = failure.error in _MAP_LEVEL_ERRORS and not output.exists(paths.plan_key)
    if rerun and output.exists(paths.failure_key):
        # Run again (Retry) after removing the scratch, plan first, with the item errors
        # it read: the record it wrote says what failed.
        kept = output.get_json(paths.failure_key)
        failure = replace(
            failure, error=kept["error"], cause=kept["cause"], failed_at=kept["failed_at"]
        )
    elif failure.error in _MAP_LEVEL_ERRORS:
        # An item that failed and then succeeded on a retry has a result: skip it.
        succeeded = {Path(k).stem for k in output.keys(paths.results_prefix)}
        item_errors = [
            k for k in sorted(output.keys(paths.errors_prefix)) if Path(k).stem not in succeeded
        ]
        if item_errors:
            first = output.get_json(item_errors[0])
            failure = replace(failure, error=first["error"], cause=first["cause"])
        elif silent := _silent_item(output, paths, succeeded):
            # Killed from outside (out of memory or time), a function writes no error.
            failure = replace(
                failure,
                cause=f"{failure.cause}; {silent} left no result and no error: Lambda "
                "stopped its function (out of memory or past its timeout: the function "
                "log says which) or never ran it",
            )
    output.put_json(paths.failure_key, failure.to_dict())
    # Before announcing: a bus that stays down must not leave rungs a player could read.
    # The scratch stays until then, so a run again still finds the item's own error.
    output.delete_prefix(paths.output_prefix)
    if settings.keys_table:
        # Nothing of the job stays to be played: its content key (if it had one) goes too.
        KeyStore.of(settings, clients).forget(paths.job_id)
    if events.announce(events.job_failed(failure.to_dict()), settings.event_bus, output, clients):
        metrics.about(job_id=paths.job_id)
        metrics.job_failed(failure.error)
    # The plan first: a run again without it knows the item errors may be gone.
    output.delete_keys([paths.plan_key])
    output.delete_prefix(paths.scratch_prefix)
    return {"error": failure.error, "cause": failure.cause, "failure_key": paths.failure_key}


def _silent_item(output: Bucket, paths: JobPaths, succeeded: set[str]) -> str | None:
    """The first planned work item (per-title analysis first) without a result."""
    for key in (paths.analysis_items_key, paths.items_key):
        if not output.exists(key):
            continue
        for item in output.get_json(key):
            name = WorkItem.from_dict(item).name
            if name not in succeeded:
                return name
    return None
