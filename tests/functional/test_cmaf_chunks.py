"""CMAF rungs made of chunks encoded apart, from sources whose frames are not evenly spaced:
one init segment must serve every fragment, each frame presented at its source's time."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from workflow.local.binaries import ffmpeg_binary
from workflow.media import cmaf, encode
from workflow.media.chunks import plan_chunks
from workflow.media.ladder import build_ladder
from workflow.media.probe import probe
from workflow.media.rungs import encode_chunk, split_cmaf
from workflow.settings import Limits


def jittery(directory: Path) -> Path:
    """4 s at 30 fps on a 90 kHz clock, each frame up to 2.7 ms off its even time (frame
    durations of 2880 and 3180 ticks), as a phone's camera stamps them; B-frames."""
    path = directory / "jittery.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         r"testsrc2=size=160x120:rate=30:duration=4,settb=1/90000,setpts='N*3000+mod(N*3\,5)*60'",
         "-fps_mode", "passthrough", "-enc_time_base", "1/90000",
         "-video_track_timescale", "90000", "-c:v", "libx264", "-preset", "veryfast",
         "-g", "30", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def cmaf_rung(source: Path, workdir: Path) -> tuple[list[bytes], list[bytes]]:
    """Encode ``source`` as TranscodeChunk does with CMAF (2 s chunks of 1 s segments, x264
    veryfast: B-frames) into one rung; every chunk's init segment, and the fragments."""
    data = source.read_bytes()
    probed = probe(str(source), head=data[:65536], size=len(data), limits=Limits())
    facts = probed.facts
    (rung,) = build_ladder(facts.display_width, facts.display_height, facts.frame_rate, "120:200")
    chunks = plan_chunks(probed.index, 2, 1)
    assert len(chunks) >= 2
    inits, fragments = [], []
    for chunk in chunks:

        def commands(directory: Path, margin: float, chunk: Any = chunk) -> list[list[str]]:
            return [
                encode.build_chunk_command(
                    str(source),
                    facts.container,
                    facts.container_start,
                    chunk,
                    [rung],
                    directory,
                    margin=margin,
                    final=chunk is chunks[-1],
                    binary=ffmpeg_binary(),
                    preset="veryfast",
                    packaging="cmaf",
                )
            ]

        chunk_dir = workdir / f"chunk{chunk.index}"
        chunk_dir.mkdir()
        encoded = encode_chunk(
            commands, chunk_dir, [rung.name], chunk, facts.container_start, timeout=lambda: 300
        )
        split, _ = split_cmaf(encoded, facts.frame_rate)
        segments = split[rung.name]
        inits.append((segments[0].path.parent / "init.mp4").read_bytes())
        fragments += [segment.path.read_bytes() for segment in segments]
    return inits, fragments


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return sorted(float(f.time) for f in container.decode(container.streams.video[0]))


def decode_time(fragment: bytes) -> int:
    """The ``tfdt`` of a fragment's one track."""
    moof = next(b for b in cmaf.boxes(fragment) if b.kind == b"moof")
    traf = next(b for b in cmaf.boxes(fragment, moof.body.start, moof.end) if b.kind == b"traf")
    tfdt = next(b for b in cmaf.boxes(fragment, traf.body.start, traf.end) if b.kind == b"tfdt")
    wide = fragment[tfdt.body.start] == 1
    return int(struct.unpack_from(">Q" if wide else ">I", fragment, tfdt.body.start + 4)[0])


@pytest.mark.parametrize("name", ["jittery", "vfr_faster"])
def test_chunks_of_uneven_frames_share_one_init_and_keep_every_frame_time(
    name: str, clip: Any, tmp_path: Path
) -> None:
    # GIVEN a source whose frames are not evenly spaced: a jittery clock, or a rate that
    # changes (30, 10, then 60 fps)
    source = jittery(tmp_path) if name == "jittery" else clip(name)
    # WHEN its chunks are encoded apart into CMAF segments
    inits, fragments = cmaf_rung(source, tmp_path)
    # THEN every chunk wrote the same init segment, and Publish can serve them all with it
    assert len(set(inits)) == 1
    # AND played through it, every frame of the source is presented once, at its own time
    whole = tmp_path / "rung.mp4"
    whole.write_bytes(inits[0] + b"".join(fragments))
    truth = frame_times(source)
    played = frame_times(whole)
    assert len(played) == len(truth)
    shifted = [t - encode.TS_OFFSET for t in played]
    assert shifted == pytest.approx(truth, abs=1e-6)
    if name == "jittery":
        # AND each fragment's decode time (where an HLS player puts it) is its first
        # frame's presentation time, a clock's jitter notwithstanding
        scale = cmaf.timescale(inits[0])
        for fragment in fragments:
            alone = tmp_path / "fragment.mp4"
            alone.write_bytes(inits[0] + fragment)
            assert decode_time(fragment) / scale == pytest.approx(frame_times(alone)[0], abs=1e-6)
