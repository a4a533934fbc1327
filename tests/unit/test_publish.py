"""Publish reads every work item's result record, in parallel, exactly as one by one."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests import records
from workflow.errors import IncompleteOutputError, TranscodeError, TransientError
from workflow.media.audio_pieces import SAMPLE_RATE, plan_audio_pieces
from workflow.names import AUDIO, segment_number, segment_pattern
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.jobs import JobPaths
from workflow.vod.publish import _playlists, _quality_report, _results
from workflow.vod.records import Plan, SegmentsResult

SEGMENT = segment_pattern(".ts")

OUTPUT = "vidflow-output-publish"
ITEMS = [f"chunk-{n:05d}" for n in range(300)] + ["audio", "images"]


@pytest.fixture
def written() -> Iterator[tuple[Any, JobPaths]]:
    """An output bucket holding a result record for each of 302 work items."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=OUTPUT)
        paths = JobPaths("job-publish")
        for n, item in enumerate(ITEMS):
            record = {"item": item, "rungs": {"360p": [{"uri": f"{n}.ts", "duration": 4.0}]}}
            s3.put_object(Bucket=OUTPUT, Key=paths.result_key(item), Body=json.dumps(record))
        yield s3, paths


class _Failing:
    """An S3 client whose GetObject of one key fails with ``error``."""

    def __init__(self, inner: Any, key: str, error: Exception) -> None:
        self.inner, self.key, self.error = inner, key, error

    def get_object(self, **params: Any) -> Any:
        if params["Key"] == self.key:
            raise self.error
        return self.inner.get_object(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_many_records_read_in_parallel_equal_the_serial_read(
    written: tuple[Any, JobPaths],
) -> None:
    s3, paths = written
    output = Bucket(s3, OUTPUT)
    serial = {item: output.get_json(paths.result_key(item)) for item in ITEMS}

    parallel = _results(output, paths, ITEMS)

    assert parallel == serial
    assert list(parallel) == ITEMS


def test_an_unlisted_record_is_incomplete_output(written: tuple[Any, JobPaths]) -> None:
    s3, paths = written
    s3.delete_object(Bucket=OUTPUT, Key=paths.result_key("chunk-00007"))
    with pytest.raises(IncompleteOutputError, match=r"1 of 302 .*chunk-00007"):
        _results(Bucket(s3, OUTPUT), paths, ITEMS)


def test_a_record_removed_after_listing_is_incomplete_output(
    written: tuple[Any, JobPaths],
) -> None:
    # GIVEN the listing saw every record, WHEN one is removed before it is read
    s3, paths = written
    key = paths.result_key("chunk-00150")
    missing = s3.exceptions.NoSuchKey(
        {"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject"
    )
    output = Bucket(_Failing(s3, key, missing), OUTPUT)
    # THEN publishing names it
    with pytest.raises(IncompleteOutputError, match=r"chunk-00150 was removed"):
        _results(output, paths, ITEMS)


def test_throttling_while_reading_is_transient(written: tuple[Any, JobPaths]) -> None:
    s3, paths = written
    slow = ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "GetObject")
    output = Bucket(_Failing(s3, paths.result_key("audio"), slow), OUTPUT)
    with pytest.raises(TransientError), transient_aws_errors():
        _results(output, paths, ITEMS)


def _pieces_result(plan: Plan, shift: int, short: bool) -> dict[str, SegmentsResult]:
    """Each audio piece's result as its encode writes it: its segments, numbered on from
    the piece before (``shift`` renumbers the second piece's), lasting its span (``short``:
    the first piece without its last segment)."""
    results = {}
    for piece in plan.audio_pieces:
        bounds = [*piece.segment_starts, piece.end_sample]
        first = piece.first_segment + (shift if piece.index == 1 else 0)
        segments = [
            {"uri": SEGMENT % (first + n), "duration": round((b - a) / SAMPLE_RATE, 6)}
            for n, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
        if short and piece.index == 0:
            segments = segments[:-1]
        results[piece.item] = SegmentsResult(piece.item, {AUDIO: segments}, {}, 1.0, "now")
    return results


@pytest.mark.parametrize(
    ("shift", "short", "problem"),
    [(0, False, None), (1, False, "starts at sample"), (0, True, "segments last")],
)
def test_audio_pieces_join_only_where_they_abut(
    shift: int, short: bool, problem: str | None
) -> None:
    # GIVEN a 20 s job's audio in 4 s pieces as encoded; or with the second piece's
    # segments numbered one on, or the first piece missing its last segment
    plan = records.plan(audio_pieces=plan_audio_pieces(20.0, 4.0, 2.0))
    assert len(plan.audio_pieces) == 5
    encoded = {
        c.item: SegmentsResult(
            c.item, {"360p": [{"uri": f"{c.item}.ts", "duration": 4.0}]}, {}, 1.0, "now"
        )
        for c in plan.chunks
    }
    encoded |= _pieces_result(plan, shift, short)
    # WHEN Publish assembles the audio playlist
    if problem is None:
        audio = _playlists(plan, encoded)[AUDIO]
        # THEN it is every piece's segments in order, numbered on, lasting the 20 s
        assert [segment_number(s.uri) for s in audio] == list(range(len(audio)))
        assert sum(s.duration for s in audio) == pytest.approx(20.0, abs=1e-4)
    else:
        # THEN a gap, an overlap or a short piece fails the job by name: nothing published
        with pytest.raises(TranscodeError, match=problem):
            _playlists(plan, encoded)


def _scored(plan: Plan, vmaf: list[list[float]]) -> dict[str, SegmentsResult]:
    return {
        chunk.item: SegmentsResult(
            chunk.item, {}, {}, 1.0, "now", quality={"360p": {"vmaf": v, "psnr": [40.0] * len(v)}}
        )
        for chunk, v in zip(plan.chunks, vmaf, strict=True)
    }


def test_a_chunk_with_nothing_scored_is_left_out_of_the_report() -> None:
    # GIVEN a report sampled by segment, whose second chunk's segment held no frame
    plan = records.plan(quality_stride=11, quality_segment_every=3)
    report = _quality_report(plan, _scored(plan, [[90.0, 80.0], []]))
    # THEN the rung's summary is the first chunk's, and only it is listed
    assert report is not None and report["segment_every"] == 3 and report["stride"] == 11
    rung = report["rungs"]["360p"]
    assert rung["frames"] == 2 and rung["vmaf_mean"] == 85.0
    assert rung["chunks"] == [{"start": 0.0, "vmaf_mean": 85.0}]
    # AND where no chunk had a frame to score there is no report, rather than a made-up one
    assert _quality_report(plan, _scored(plan, [[], []])) is None
    assert _quality_report(records.plan(), _scored(plan, [[90.0], [80.0]])) is None
