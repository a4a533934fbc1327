"""Records read by an older function than the one that wrote them (a stack updates its
functions one by one, and a rollback runs older code over newer records)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pytest

from tests.records import FACTS, plan, stream_settings
from workflow.live.config import StreamSettings
from workflow.live.segment import ProbedSegment
from workflow.media.facts import SourceFacts
from workflow.media.subtitles import Sidecar
from workflow.vod.records import (
    ImagesPiece,
    ImagesResult,
    Plan,
    SegmentsResult,
    SubtitlesResult,
    WorkItem,
)


def _newer(data: dict[str, Any], *records: str) -> dict[str, Any]:
    """``data`` as a newer writer would leave it: a field more in it and in each record
    it holds at ``records`` (dotted paths; ``*`` for each of a list's)."""
    data = {**data, "added_later": [1, {"x": 2}]}
    for path in records:
        name, _, rest = path.partition(".")
        if name == "*":
            return [_newer(v, rest) if rest else {**v, "added_later": 1} for v in data]  # type: ignore[return-value]
        held = data[name]
        if isinstance(held, list):
            data[name] = [_newer(v, *([rest] if rest else [])) for v in held]
        elif held is not None:
            data[name] = _newer(held, *([rest] if rest else []))
    return data


RECORDS = [
    (SourceFacts, replace(FACTS, subtitles_left_out=["en (mov_text)"]), ["audio"]),
    (Plan, plan(), ["facts.audio", "renditions", "chunks", "audio_pieces"]),
    (StreamSettings, stream_settings(), ["renditions"]),
    (ProbedSegment, ProbedSegment("mpegts", 1.4, 1.4, 3.4, True, audio_span=(1.38, 3.41)), []),
    (
        SegmentsResult,
        SegmentsResult("video-00000", {"360p": []}, {}, 1.0, "2026-12-05T00:00Z"),
        [],
    ),
    (SubtitlesResult, SubtitlesResult("subtitles-en", "en", "uploads/a.en.srt", "2026"), []),
    (
        ImagesResult,
        ImagesResult("images", "images/poster.jpg", 1.0, {"count": 2}, {}, 1.0, "2026"),
        [],
    ),
    (
        WorkItem,
        WorkItem("subtitles", sidecar=Sidecar("uploads/a.en.srt", "en", "srt")),
        ["sidecar"],
    ),
    (WorkItem, WorkItem("images", images=ImagesPiece(0, 4)), ["images"]),
    (WorkItem, WorkItem("video", chunk=plan().chunks[1]), ["chunk"]),
    (WorkItem, WorkItem("audio", piece=plan().audio_pieces[0]), ["piece"]),
]


@pytest.mark.parametrize(("kind", "record", "held"), RECORDS)
def test_a_record_with_fields_a_newer_version_added_is_read_as_it_was(
    kind: Any, record: Any, held: list[str]
) -> None:
    # GIVEN a record, written by a newer version with a field (in it and in every record
    # it holds) this one does not know
    data = _newer(record.to_dict() if hasattr(record, "to_dict") else asdict(record), *held)
    # WHEN this version reads it, THEN it reads what it knows, and nothing is lost of that
    assert kind.from_dict(data) == record


def test_facts_that_say_nothing_new_are_written_as_the_version_before_wrote_them() -> None:
    # GIVEN facts with no subtitle track in the file and a constant rate, as most are
    facts = replace(FACTS, peak_frame_rate=FACTS.frame_rate)
    # WHEN written, THEN they hold no field the version before this one's readers lacked
    # (they read with cls(**data): an unknown field failed every job in flight)
    added = {"subtitles_left_out", "audio_left_out", "data_left_out", "captions", "peak_frame_rate"}
    assert not added & set(facts.to_dict())
    assert not added & set(plan(facts={"peak_frame_rate": 30.0}).to_dict()["facts"])
    # AND read back, they are what was written, and written again as they were
    again = SourceFacts.from_dict(facts.to_dict())
    assert again.max_frame_rate == facts.max_frame_rate
    assert again.to_dict() == facts.to_dict()
    # AND facts that say something new keep it
    tracks = replace(
        facts,
        subtitles_left_out=["en (mov_text)"],
        audio_left_out=["de (aac)"],
        data_left_out=["en (timecode)"],
        captions=True,
        peak_frame_rate=60.0,
    )
    assert SourceFacts.from_dict(tracks.to_dict()) == tracks
