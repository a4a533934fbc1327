"""The records that cross a state boundary or S3 survive their JSON whole, and read back
the exact dict shapes the state machines and earlier deploys wrote."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.records import FACTS, plan
from workflow.failures import FailureRecord
from workflow.live.segment import ProbedSegment
from workflow.media.audio_pieces import AudioPiece
from workflow.media.chunks import Chunk, FrameIndex
from workflow.media.subtitles import Sidecar
from workflow.runtime import Clients
from workflow.vod.records import (
    ImagesPiece,
    ImagesResult,
    Plan,
    ProbeRecord,
    SegmentsResult,
    Source,
    SubtitlesResult,
    WorkItem,
)


def through_json(record: Any) -> Any:
    return type(record).from_dict(json.loads(json.dumps(record.to_dict())))


@pytest.mark.parametrize(
    "record",
    [
        Source("in", "uploads/a.mp4", "abc", "v1", 42),
        ProbeRecord(FACTS, FrameIndex(0.0, 4.0, [0.0, 2.0]), "cmaf", 0.25),
        plan(),
        plan(facts={"audio": None}, extras=["images", "subtitles-en"]),
        WorkItem("video", chunk=Chunk(3, 6.0, 8.0, 3, [6.0], margin=3.0)),
        WorkItem("subtitles", sidecar=Sidecar("uploads/a.en.srt", "en", "srt"), etag="e1"),
        WorkItem("audio", piece=AudioPiece(1, 1024, 2048, 3, [1024], True)),
        WorkItem("images", images=ImagesPiece(200, 100)),
        SegmentsResult(
            "video-00000",
            {"360p": [{"uri": "seg_00000.ts", "duration": 2.0, "bytes": 9}]},
            {},
            1.5,
            "2026-11-30T00:00:00.000+00:00",
            1.2,
        ),
        SubtitlesResult("subtitles-en", "en", "uploads/a.en.srt", "2026-11-30T00:00:00.000+00:00"),
        ImagesResult("images", "images/poster.jpg", 1.0, {"count": 1}, {"count": 1}, 0.5, "t"),
        ImagesResult("images-00100", None, None, {"count": 20}, {"count": 1}, 0.5, "t"),
        FailureRecord({"stream": "game", "sequence": 7}, "TranscodeError", "bad", None, "t"),
        ProbedSegment("mpegts", 1.4, 10.0, 12.0, True),
        ProbedSegment("mpegts", 1.4, 10.0, 12.0, True, audio_span=(9.94, 11.96)),
    ],
    ids=lambda r: type(r).__name__,
)
def test_a_record_survives_its_json(record: Any) -> None:
    assert through_json(record) == record


def test_work_items_keep_the_shape_the_map_reads() -> None:
    # the Map's ItemSelector and every deployed execution pass items in this shape
    chunk = Chunk(0, 0.0, 2.0, 0, [0.0])
    assert WorkItem("video", chunk=chunk).to_dict() == {"kind": "video", "chunk": chunk.to_dict()}
    sidecar = WorkItem("subtitles", sidecar=Sidecar("k.en.srt", "en", "srt"), etag="e")
    assert sidecar.to_dict() == {
        "kind": "subtitles",
        "sidecar": {"key": "k.en.srt", "language": "en", "format": "srt"},
        "etag": "e",
    }
    piece = WorkItem("audio", piece=AudioPiece(2, 2048, 4096, 7, [2048], False))
    assert piece.to_dict() == {"kind": "audio", "piece": piece.audio_piece().to_dict()}
    assert [WorkItem.from_dict(i.to_dict()).name for i in (sidecar, piece)] == [
        "subtitles-en",
        "audio-00002",
    ]


def test_the_first_images_piece_keeps_the_name_publish_reads_the_images_by() -> None:
    # the first piece's result is the one the manifest's images come from; a plan from
    # before pieces has one images item, without a piece, under the same name
    pieces = [WorkItem("images", images=ImagesPiece(first, 100)) for first in (0, 100, 700)]
    old = WorkItem.from_dict({"kind": "images"})
    assert [i.name for i in (*pieces, old)] == ["images", "images-00100", "images-00700", "images"]
    assert pieces[1].to_dict() == {"kind": "images", "images": {"first": 100, "ticks": 100}}
    assert old.images is None


def test_a_plan_names_every_item_publish_waits_for() -> None:
    with_audio = plan(extras=["images"])
    assert with_audio.items == ["video-00000", "video-00001", "audio-00000", "images"]
    assert plan(facts={"audio": None}).items == ["video-00000", "video-00001"]
    assert Plan.from_dict(with_audio.to_dict()).cmaf is False


def test_a_failure_record_reads_a_catch_and_the_clock() -> None:
    caught = {"Error": "TranscodeError", "Cause": json.dumps({"errorMessage": "no  video\nhere"})}
    record = FailureRecord.of(
        {"job_id": "j"}, caught, {"key": "k"}, Clients(s3=None, clock=lambda: 0)
    )
    assert record.to_dict() == {
        "job_id": "j",
        "error": "TranscodeError",
        "cause": "no video here",
        "input": {"key": "k"},
        "failed_at": "1970-01-01T00:00:00.000+00:00",
    }
