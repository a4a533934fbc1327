"""The recording of a long live stream, under its writers' memory.

docs/limits.md promises at least 36 h of 1 s segments in an EVENT playlist. When such a
stream ends, whichever writer holds its lease (LivePublish, LiveIngest on END, LiveSweep
on idle) reads all 129,600 arrivals and writes the recording. Measured in the local
engine (the functions' build, their ``MemorySize`` enforced): 471 MB of 512 when every
arrival was held as stored, 239 MB once only what the recording needs was kept. Here
the growth per arrival is measured at two sizes that run in seconds, and extrapolated.
"""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.records import stream_settings
from workflow.live import rules
from workflow.live.publish import publish_recording
from workflow.live.store import StreamTable
from workflow.local.template import Stack
from workflow.media.ladder import build_ladder
from workflow.runtime import Clients
from workflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# 36 h of 1 s segments: what docs/limits.md promises an EVENT stream holds.
PROMISED = 36 * 3600
# A warm writer's resident memory before it reads a stream (the engine's REPORT lines of
# LivePublish, LiveIngest and LiveSweep on a short stream: 66-93 MB).
BASELINE_MB = 100
# Resident memory over what tracemalloc counts (the allocator's arenas, freed pages it
# keeps): at 36 h the engine's REPORT was 1.1 (471 MB) and 1.4 (239 MB) times this
# test's extrapolation above the baseline.
RESIDENT_OVER_TRACED = 1.5
# About 1 MB of arrivals: what one DynamoDB query page returns.
PAGE_ITEMS = 2_300


class _Output:
    """An output bucket that keeps only how much was written."""

    name = "out"

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def put_all(self, bodies: Mapping[str, bytes]) -> None:
        self.sizes |= {key: len(body) for key, body in bodies.items()}

    def put_bytes(self, key: str, body: bytes) -> None:
        self.sizes[key] = len(body)

    def put_json(self, key: str, value: Any) -> None:
        self.sizes[key] = len(json.dumps(value))


def _pages(count: int, rungs: list[str]) -> Iterator[dict[str, Any]]:
    """``count`` arrivals of a 1080p venue with audio as DynamoDB returns them, a page of
    fresh items at a time (as boto3 parses each page)."""
    lengths = random.Random(count)
    start = 10.0
    for low in range(0, count, PAGE_ITEMS):
        page = []
        for sequence in range(low, min(low + PAGE_ITEMS, count)):
            duration = round(lengths.uniform(0.95, 1.05), 6)
            arrival = {
                "duration": duration, "at": 1.8e9 + sequence, "failed": False,
                "bytes": {rung: 600_000 + sequence % 1000 for rung in rungs},
                "upload": f"{sequence:032x}/{sequence:032x}", "uploaded": 1.8e9 + sequence,
                "start": round(start, 6), "end": round(start + duration, 6),
                "form": "h264 1920x1080 30.000fps, aac 2ch 48000Hz",
            }  # fmt: skip
            start += duration
            item = {"stream": {"S": "marathon"}, "item": {"S": f"seg#{sequence:012d}"}}
            page.append(item | {"arrival": {"S": json.dumps(arrival)}})
        yield from page


def _recording_peak_mb(count: int, monkeypatch: pytest.MonkeyPatch) -> float:
    """The most memory (MB, as tracemalloc counts it) that making the recording of a
    stream of ``count`` arrivals takes, over what was held before."""
    config = stream_settings(
        renditions=build_ladder(1920, 1080, 30.0, "1080:5000,720:2800,480:1400,360:800"),
        segment_seconds=1.0,
        has_audio=True,
    )
    monkeypatch.setattr(
        StreamTable, "_query", lambda self, stream, low, high: _pages(count, config.rungs)
    )
    ended = rules.LivePlaylist(0, (rules.Entry(count - 1, 1.0),), ended=True)
    output = _Output()
    tracemalloc.start()
    try:
        publish_recording(
            "marathon", StreamTable(None, "live"), output, config, ended,  # type: ignore[arg-type]
            Settings(output_bucket="out", live_table="live"), Clients(s3=None),
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert output.sizes["live/marathon/1080p/index.m3u8"] > 30 * count  # (it was made)
    return peak / 1e6


def test_the_recording_of_the_longest_promised_stream_fits_every_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the functions that make a recording, as the template sizes them
    functions = {f.logical_id: f for f in Stack(ROOT).functions()}
    writers = ("LivePublishFunction", "LiveIngestFunction", "LiveSweepFunction")
    memory_mb = min(functions[name].memory for name in writers)
    # WHEN the recording of 5,000 and of 20,000 arrivals is made
    small, large = 5_000, 20_000
    at_small = _recording_peak_mb(small, monkeypatch)
    at_large = _recording_peak_mb(large, monkeypatch)
    # THEN what it grows by per arrival, at the 129,600 of 36 h of 1 s segments, leaves
    # the smallest writer room: not out of memory on every retry, with no recording
    per_arrival = (at_large - at_small) / (large - small)
    at_promised = at_large + per_arrival * (PROMISED - large)
    resident = BASELINE_MB + RESIDENT_OVER_TRACED * at_promised
    assert resident <= memory_mb, (
        f"{per_arrival * 1e6:.0f} bytes per arrival: {at_promised:.0f} MB traced at 36 h, "
        f"about {resident:.0f} MB resident, over the {memory_mb} MB of the smallest writer"
    )
