"""What the VOD work items share: the event they get, their error records, pinned reads
of the source, and their segment uploads."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from workflow.errors import EventError, VidflowError
from workflow.keys import cbcs
from workflow.keys import segments as aes128
from workflow.keys.store import ContentKey, KeyStore
from workflow.media import subtitles
from workflow.media.runner import Segment
from workflow.names import CMAF_INIT
from workflow.runtime import Clients, Deadline, event_time
from workflow.settings import Settings
from workflow.storage import Bucket, RangeReader, transient_aws_errors
from workflow.vod.jobs import JobPaths, read_job_record
from workflow.vod.progress import ItemProgress
from workflow.vod.records import ANALYSIS, Plan, Source, WorkItem


@dataclass(frozen=True)
class Work:
    """What a Map item's step works with: its job, the source, its item, the plan, the
    output bucket and the clients."""

    paths: JobPaths
    source: Source
    item: WorkItem
    plan: Plan
    output: Bucket
    clients: Clients
    settings: Settings

    def content_key(self) -> ContentKey | None:
        """The job's content key, where its output is protected."""
        if self.plan.encryption is None:
            return None
        return KeyStore.of(self.settings, self.clients).get(self.paths.job_id)

    def progress(self) -> ItemProgress:
        """Where this item's encode says how far it is while it runs."""
        key = self.paths.progress_key(self.item.name)
        return ItemProgress(self.output, key, self.item.name, self.clients.clock)


ItemStep = Callable[[Work, Deadline], dict[str, Any]]
Handler = Callable[[dict[str, Any], Settings, Clients, Deadline], dict[str, Any]]


def work_item(step: ItemStep) -> Handler:
    """A Map item's step, called with its event read and its plan loaded; AWS trouble
    becomes ``TransientError``, and a failure leaves its name and cause where
    ``record_failure`` finds it.

    A Map reports a failed item only as its own failure
    (``States.ExceedToleratedFailureThreshold``), so the item's error would otherwise be
    lost.
    """

    @functools.wraps(step)
    def run(
        event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
    ) -> dict[str, Any]:
        paths, item = JobPaths(event["job_id"]), WorkItem.from_dict(event["item"])
        output = Bucket(clients.s3, settings.output_bucket)
        began = clients.utc_now()
        try:
            with transient_aws_errors():
                plan = Plan.from_dict(read_job_record(output, paths.plan_key, "Plan"))
                source = Source.from_dict(event["source"])
                _check_planned(item, plan, paths, output, source)
                work = Work(paths, source, item, plan, output, clients, settings)
                done = step(work, remaining)
                _remove_if_failed_since(output, paths, source.uploaded_at, began)
                return done
        except EventError:
            # Not the job's item: its error is no error of the job's.
            raise
        except Exception as exc:
            # Transient ones too: the last attempt's error is the item's if retries run out.
            # Any other (S3 or KMS refusing: AccessDenied) by the name Lambda reports it by.
            name = exc.name if isinstance(exc, VidflowError) else type(exc).__name__
            cause = " ".join(f"{item.name}: {exc}".split())
            # A record S3 refuses too must not hide the item's own error.
            with contextlib.suppress(Exception):
                output.put_json(paths.item_error_key(item.name), {"error": name, "cause": cause})
            with contextlib.suppress(Exception):
                # Failed after uploading some of its files, its job failed meanwhile: the
                # Map is over, so nothing retries it and nothing else would remove them.
                uploaded_at = event["source"].get("uploaded_at")
                _remove_if_failed_since(output, paths, uploaded_at, began)
            raise

    return run


def _check_planned(
    item: WorkItem, plan: Plan, paths: JobPaths, output: Bucket, source: Source
) -> None:
    """Refuse an item its job's plan has not (a hand-made event's): its segments would
    replace the job's own, published ones too, with other spans of the source; an images
    piece of other ticks, its sheets. A subtitles item must be of one of the upload's own
    sidecars, in the language its key says: another would publish a track of any object
    of the ingest bucket, or over another language's. (Not only those the plan listed: a
    sidecar uploaded after the plan is converted alone, as docs/local.md's walk-through
    does, and publish takes only the plan's.)"""
    if item.kind == ANALYSIS:
        return  # (a per-title ladder's spans are its own, not the plan's chunks)
    if item.kind == "subtitles":
        sidecar = item.subtitle_sidecar()
        planned_item = subtitles.find_sidecars(source.key, [sidecar.key]) == [sidecar]
    elif item.kind in WorkItem.EXTRA_KINDS:
        # The plan names its extras only; the items it listed say what each is.
        listed = read_job_record(output, paths.items_key, "Plan")
        planned_item = item.name in plan.extras and item.to_dict() in listed
    else:
        planned = plan.chunks if item.chunk is not None else plan.audio_pieces
        made = item.chunk if item.chunk is not None else item.piece
        planned_item = made is None or made in planned
    if not planned_item:
        raise EventError(
            f"the event's 'item' is not one of the items {paths.job_id}'s plan has: "
            f"{item.name} spans other times, or the job has no such item"
        )


def _remove_if_failed_since(
    output: Bucket, paths: JobPaths, uploaded_at: str | None, began: str
) -> None:
    """Remove the job's output if it failed while this item ran: another item's error
    ended its Map, and Step Functions stops an item's execution but not the Lambda
    invocation running it (nor one it invoked just before, whose handler starts after
    the failure), which uploads after RecordFailure removed the partial output it saw.
    Nothing expires ``outputs/``: what this item uploaded would be kept for ever.
    (RecordFailure writes the record before it removes; this looks after uploading: one
    of the two sees the other's.) A record from before the upload this job publishes is
    an earlier run's of the same id (the same bytes under the same key, months ago); an
    event that says no upload time, or one that is no time (written by hand), has the
    item's start ``began`` instead."""
    if not output.exists(paths.failure_key):
        return
    failed_at = event_time(output.get_json(paths.failure_key).get("failed_at"))
    since = event_time(uploaded_at) or event_time(began)
    if failed_at is None or since is None or failed_at < since:
        return
    output.delete_prefix(paths.output_prefix)


@contextmanager
def source_input(source: Source, clients: Clients) -> Iterator[tuple[str, str | None]]:
    """Where ffmpeg reads the job's upload, and the headers that pin each read to it.

    The pin is checked again once the reading is over, failed or not: an upload replaced
    mid-read (ffmpeg may see a pinned read refused as an error or as an early end) ends
    in ``SourceChangedError``, never in an output mixing two uploads.
    """
    ingest = Bucket(clients.s3, source.bucket)
    with ingest.pinned(source.key, source.pin):
        yield ingest.presign(source.key, pin=source.pin), source.pin.http_headers()


@contextmanager
def source_reader(source: Source, clients: Clients, size: int) -> Iterator[RangeReader]:
    """The job's upload as a file that costs only the ranges read, each read pinned to
    it, and checked again as ``source_input`` does."""
    ingest = Bucket(clients.s3, source.bucket)
    with ingest.pinned(source.key, source.pin):
        yield RangeReader(ingest, source.key, size, source.pin)


def upload_segments(
    output: Bucket,
    paths: JobPaths,
    rungs: dict[str, list[Segment]],
    *,
    cmaf: bool = False,
    first: bool = False,
    key: ContentKey | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Upload each rung's segments (and, for the ``first`` item of a ``cmaf`` job, its
    init), encrypted under ``key`` if one is given (cbcs for cmaf, else AES-128); what
    each one is."""
    if key is not None:
        _encrypt(rungs, key, cmaf)
    files = {
        f"{paths.output_prefix}{rung}/{segment.path.name}": segment.path
        for rung, segments in rungs.items()
        for segment in segments
    }
    if cmaf and first:
        files |= {
            f"{paths.output_prefix}{rung}/{CMAF_INIT}": segments[0].path.with_name(CMAF_INIT)
            for rung, segments in rungs.items()
        }
    output.upload_all(files)
    return {
        rung: [
            {"uri": s.path.name, "duration": s.duration, "bytes": s.path.stat().st_size}
            for s in segments
        ]
        for rung, segments in rungs.items()
    }


def _encrypt(rungs: dict[str, list[Segment]], key: ContentKey, cmaf: bool) -> None:
    for rung, segments in rungs.items():
        if cmaf:
            init = segments[0].path.with_name(CMAF_INIT)
            cbcs.encrypt_rung(init, [s.path for s in segments], key.key, key.key_id)
            continue
        for segment in segments:
            aes128.encrypt_segment(segment.path, key.key, f"{rung}/{segment.path.name}")
