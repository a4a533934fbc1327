"""The probe reads a container's index, or its head and tail, never every packet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from workflow.local.binaries import ffmpeg_binary
from workflow.media.probe import probe
from workflow.settings import Limits
from workflow.storage import RangeReader


class LocalFile:
    """What RangeReader needs of a bucket, over one local file."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()

    def read_span(self, key: str, start: int, stop: int, pin: object = None) -> bytes:
        return self.data[start:stop]


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of 640x360 with 2 s GOPs, B-frames and audio: about 9 MB."""
    path = tmp_path_factory.mktemp("reads") / "long.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"]
        + ["testsrc2=size=640x360:rate=30:duration=120", "-f", "lavfi", "-i"]
        + ["sine=frequency=440:duration=120", "-c:v", "libx264", "-preset", "ultrafast"]
        + ["-g", "60", "-bf", "2", "-b:v", "600k", "-c:a", "aac", str(path)],
        check=True,
    )
    return path


@pytest.mark.parametrize(
    ("container", "options", "listed"),
    [("mp4", [], 60), ("mkv", [], 60), ("ts", ["-f", "mpegts"], 0)],
)
def test_the_probe_reads_a_small_part_of_a_long_file(
    long_source: Path, tmp_path: Path, container: str, options: list[str], listed: int
) -> None:
    # GIVEN two minutes in MP4 (moov at the end), Matroska and MPEG-TS
    path = tmp_path / f"long.{container}"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(long_source)]
        + ["-c", "copy", *options, str(path)],
        check=True,
    )
    size = path.stat().st_size
    reader = RangeReader(LocalFile(path), path.name, size)  # type: ignore[arg-type]
    # WHEN it is probed through the reader the Probe function uses
    probed = probe(reader, head=path.read_bytes()[:65536], size=size, limits=Limits())
    # THEN it knows the whole span and the keyframes the index lists, having read under
    # a fifth of the file (its index or its ends, and the first frames)
    assert probed.facts.duration == pytest.approx(120.0, abs=0.1)
    assert len(probed.index.keyframes) == listed
    assert reader.bytes_read < size / 5, (reader.bytes_read, size)
