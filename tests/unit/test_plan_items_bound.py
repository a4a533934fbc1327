"""Plan refuses, before any chunk is encoded, what would otherwise fail a long job only
once its chunks had run: a Distributed Map of more item outputs than Step Functions
gathers (256 KiB: ``States.DataLimitExceeded``), a sidecar over the subtitle bound."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests import records
from workflow.errors import InputTooLongError, SubtitleError
from workflow.media.audio_pieces import FRAME, MAX_PIECE_SEGMENTS, SAMPLE_RATE, AudioPiece
from workflow.media.chunks import FrameIndex
from workflow.media.encode import build_audio_piece_command
from workflow.media.subtitles import MAX_SUBTITLE_BYTES
from workflow.runtime import Clients
from workflow.settings import Limits, Settings
from workflow.vod.jobs import JobPaths
from workflow.vod.plan import MAX_MAP_ITEMS, plan_job
from workflow.vod.records import ProbeRecord

INGEST, OUTPUT = "vidflow-ingest-items", "vidflow-output-items"
PATHS = JobPaths("job-items")
# The finest settings the template allows, on a stack whose MaxInputSeconds is raised
# to take a tournament day recorded as one file.
FINEST = replace(
    Settings(),
    output_bucket=OUTPUT,
    chunk_seconds=0.5,
    segment_seconds=0.5,
    audio_piece_seconds=0.5,
    thumbnail_seconds=1.0,
    limits=Limits(max_seconds=12 * 3600.0),
)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=INGEST)
        client.create_bucket(Bucket=OUTPUT)
        yield client


def _plan(s3: Any, hours: float, settings: Settings) -> dict[str, Any]:
    duration = hours * 3600.0
    facts = replace(records.FACTS, container="mov", duration=duration, keyframe_count=1)
    probed = ProbeRecord(facts, FrameIndex(0.0, duration, []), "hls-ts", 1.0)
    s3.put_object(Bucket=OUTPUT, Key=PATHS.probe_key, Body=json.dumps(probed.to_dict()))
    event = {"job_id": PATHS.job_id, "source": {"bucket": INGEST, "key": "day.mp4"}}
    return plan_job(event, settings, Clients(s3))


def _items(s3: Any) -> int:
    listed = s3.list_objects_v2(Bucket=OUTPUT, Prefix=PATHS.items_key).get("Contents", [])
    if not listed:
        return 0
    return len(json.loads(s3.get_object(Bucket=OUTPUT, Key=PATHS.items_key)["Body"].read()))


def test_a_map_too_many_items_to_gather_is_refused_by_plan(s3: Any) -> None:
    # GIVEN 12 h at the finest settings: ~175,000 work items, whose gathered outputs
    # ("{}," each) would pass 256 KiB only once all of them had been encoded
    # WHEN it is planned
    # THEN Plan refuses it by name, saying what to change, and queues no item
    with pytest.raises(InputTooLongError, match=r"work items.*ChunkSeconds"):
        _plan(s3, 12, FINEST)
    assert _items(s3) == 0


def test_the_finest_settings_plan_four_hours(s3: Any) -> None:
    # GIVEN the template's default 4 h bound at the finest settings
    planned = _plan(s3, 4, FINEST)
    # THEN it is planned, its items within what a Map gathers
    assert planned["items"] == _items(s3) <= MAX_MAP_ITEMS
    assert 3 * MAX_MAP_ITEMS + 2 <= 256 * 1024


def test_a_sidecar_over_the_subtitle_bound_is_refused_by_plan(s3: Any) -> None:
    # GIVEN a 4 h video whose captions (a broadcast's, line by line) run past the bound
    s3.put_object(Bucket=INGEST, Key="day.en.srt", Body=b"x" * (MAX_SUBTITLE_BYTES + 1))
    s3.put_object(Bucket=INGEST, Key="day.de.srt", Body=b"1\n00:00:01,000 --> 00:00:02,000\nok\n")
    # WHEN it is planned
    # THEN Plan refuses it by name before any chunk is queued, not its Subtitles item,
    # which the Map runs last, once the video's chunks have been encoded
    with pytest.raises(SubtitleError, match=r"day\.en\.srt is 2097153 bytes"):
        _plan(s3, 4, replace(FINEST, chunk_seconds=12.0, segment_seconds=4.0))
    assert _items(s3) == 0


def test_audio_in_one_piece_of_more_segments_than_ffmpeg_can_be_told_is_refused_by_plan(
    s3: Any,
) -> None:
    # GIVEN a 4 h Matroska upload (its audio encoded in one piece) at 1 s segments: 14,400
    # cuts, whose list is an argument ffmpeg's start would be refused (E2BIG)
    settings = replace(FINEST, chunk_seconds=12.0, segment_seconds=1.0, thumbnail_seconds=5.0)
    probed = ProbeRecord(
        replace(records.FACTS, container="matroska", duration=4 * 3600.0, keyframe_count=1),
        FrameIndex(0.0, 4 * 3600.0, []),
        "hls-ts",
        1.0,
    )
    s3.put_object(Bucket=OUTPUT, Key=PATHS.probe_key, Body=json.dumps(probed.to_dict()))
    event = {"job_id": PATHS.job_id, "source": {"bucket": INGEST, "key": "day.mkv"}}
    # WHEN it is planned
    # THEN Plan refuses it by name, saying what to change, and queues no item
    with pytest.raises(InputTooLongError, match=r"piece of 14400 segments.*SegmentSeconds"):
        plan_job(event, settings, Clients(s3))
    assert _items(s3) == 0
    # AND at 4 s segments the same upload is planned, its audio one item
    planned = plan_job(event, replace(settings, segment_seconds=4.0), Clients(s3))
    assert planned["items"] == _items(s3) > 0


def test_the_longest_piece_allowed_starts_its_ffmpeg(tmp_path: Path) -> None:
    # GIVEN a piece of the most segments Plan allows, at the end of a 277 h recording (the
    # longest cut times a piece's list can hold)
    step = 110 * 3600 * SAMPLE_RATE // FRAME * FRAME
    starts = [step + k * 4 * SAMPLE_RATE for k in range(MAX_PIECE_SEGMENTS)]
    piece = AudioPiece(1, starts[0], starts[-1] + 4 * SAMPLE_RATE, 0, starts, True)
    command = build_audio_piece_command(
        "in.mkv", "matroska", 0.0, 0.0, 277 * 3600.0, piece, tmp_path, kbps=128,
        source_rate=44_100, binary="true",
    )  # fmt: skip
    # WHEN its command is started
    # THEN the system starts it: no argument is over what one may hold
    subprocess.run(command, check=True)
