"""The Images step: what each piece is asked to make, and in how long (ffmpeg stubbed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from workflow.media import images as media
from workflow.media import runner
from workflow.media.images import Thumbnails, image_pieces, thumbnail_count
from workflow.vod import images as step
from workflow.vod.records import ImagesPiece

DURATION, INTERVAL = 7200.0, 5.0


def work(piece: ImagesPiece) -> Any:
    uploaded: dict[str, Path] = {}
    return SimpleNamespace(
        plan=SimpleNamespace(
            facts=SimpleNamespace(
                duration=DURATION,
                container="mov",
                start_time=0.0,
                interlaced=False,
                hdr=None,
                assumed_colour={},
            ),
            renditions=[SimpleNamespace(width=1920, height=1080)],
            thumbnail_seconds=INTERVAL,
        ),
        item=SimpleNamespace(name=f"images-{piece.first:05d}", images=piece),
        source=None,
        clients=SimpleNamespace(utc_now=lambda: "2026-12-03T00:00:00.000+00:00"),
        output=SimpleNamespace(upload_all=uploaded.update, put_json=lambda key, value: None),
        paths=SimpleNamespace(output_prefix="out/", result_key=lambda name: f"results/{name}"),
        uploaded=uploaded,
    )


def test_a_late_piece_has_the_time_of_one_run_of_every_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two hours at one thumbnail every 5 s, and its last piece (its ticks few)
    count = thumbnail_count(DURATION, INTERVAL)
    first, ticks = image_pieces(count)[-1]
    assert first > 0 and ticks * INTERVAL < DURATION / 4
    asked: dict[str, Any] = {}

    def make_thumbnails(*args: Any, **options: Any) -> Thumbnails:
        asked.update(options)
        made = args[4] / "00000.jpg"  # in the step's scratch folder
        made.write_bytes(b"")
        return Thumbnails((made,), (made,), 320, 180, INTERVAL, 10, 10)

    @contextlib.contextmanager
    def source_input(*_: Any) -> Iterator[tuple[str, None]]:
        yield "https://source", None

    monkeypatch.setattr(media, "make_thumbnails", make_thumbnails)
    monkeypatch.setattr(step, "source_input", source_input)
    monkeypatch.setattr(runner, "ffmpeg_binary", lambda: "ffmpeg")

    # WHEN the step runs it with 14 minutes left
    step.make_images.__wrapped__(work(ImagesPiece(first, ticks)), lambda: 840.0)

    # THEN the piece is asked for its own ticks, within the time one run of all of them
    # would have (reading from the start costs an intra-refresh source's later pieces
    # that), not the time its own span would
    assert (asked["first"], asked["ticks"]) == (first, ticks)
    assert asked["timeout"] == runner.time_limit(840.0, DURATION / 4)
    assert asked["timeout"] > runner.time_limit(840.0, ticks * INTERVAL / 4)
