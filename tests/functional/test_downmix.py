"""A source of any channel layout is published as stereo: each channel on its side, the
centre in both, and no sample past full scale however loud every channel is."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from workflow.local.binaries import ffmpeg_binary
from workflow.media import audio_pieces, encode
from workflow.media.audio_pieces import SAMPLE_RATE, plan_audio_pieces
from workflow.media.probe import probe
from workflow.media.runner import run_ffmpeg
from workflow.settings import Limits

SECONDS = 4
# 5.1's channels in ffmpeg's order: FL FR FC LFE BL BR, each its own tone.
TONES = [250, 375, 500, 625, 750, 875]


def _source(directory: Path, exprs: list[str], codec: list[str], name: str) -> Path:
    path = directory / name
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={SECONDS}",
         "-f", "lavfi", "-i", f"aevalsrc=exprs='{'|'.join(exprs)}':c=5.1:s=48000:d={SECONDS}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *codec, str(path)],
        check=True,
    )  # fmt: skip
    return path


def _published(source: Path, workdir: Path, pieces: bool) -> np.ndarray:
    """The audio encoded as the pipeline encodes it (whole, or in 2 s pieces), decoded to
    float samples as (channels, n): nothing clipped on the way out."""
    data = source.read_bytes()
    facts = probe(str(source), head=data[:65536], size=len(data), limits=Limits()).facts
    assert facts.audio is not None
    rate, binary = facts.audio.sample_rate, ffmpeg_binary()
    if pieces:
        commands = [
            encode.build_audio_piece_command(
                str(source), facts.container, facts.container_start, facts.start_time,
                facts.duration, piece, workdir / f"piece{piece.index}", kbps=128,
                source_rate=rate, binary=binary,
            )
            for piece in plan_audio_pieces(facts.duration, 2.0, 1.0)
        ]  # fmt: skip
    else:
        commands = [
            encode.build_audio_command(
                str(source), facts.container, facts.start_time, facts.duration,
                workdir / "whole", kbps=128, segment_seconds=1.0, binary=binary,
            )
        ]  # fmt: skip
    joined = bytearray()
    for command in commands:
        out = Path(command[command.index("-segment_list") + 1]).parent
        out.mkdir(parents=True)
        run_ffmpeg(command, timeout=120)
        for segment in sorted(out.glob("*.ts")):
            joined += segment.read_bytes()
    stream = workdir / "joined.ts"
    stream.write_bytes(bytes(joined))
    raw = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(stream), "-f", "f32le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    with av.open(str(stream)) as published:
        assert published.streams.audio[0].codec_context.channels == 2
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).T


def _levels_db(samples: np.ndarray, amplitude: float) -> np.ndarray:
    """Each tone's level in each output channel, in dB against ``amplitude``."""
    middle = samples[:, SAMPLE_RATE : 3 * SAMPLE_RATE].astype(np.float64)
    window = np.hanning(middle.shape[1])
    spectrum = np.abs(np.fft.rfft(middle * window, axis=1)) * 2 / window.sum()
    bins = [round(f * middle.shape[1] / SAMPLE_RATE) for f in TONES]
    return 20 * np.log10(np.maximum(spectrum[:, bins], 1e-9) / amplitude)


@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "pieces"])
def test_full_scale_5_1_is_downmixed_without_passing_full_scale(
    pieces: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio_pieces, "MIN_PREROLL_FRAMES", audio_pieces.FRAMES_PER_SECOND)
    # GIVEN 5.1 with every channel the same tone near full scale, in PCM (no coding loss)
    source = _source(tmp_path, ["0.9*sin(2*PI*440*t)"] * 6, ["-c:a", "pcm_s16le"], "loud.mov")
    # WHEN its audio is published
    samples = _published(source, tmp_path, pieces)
    # THEN no sample passes full scale, which every player clips (ffmpeg's own downmix
    # adds front, centre and surround at up to 2.4 times full scale: +8 dBFS)
    peak = float(np.abs(samples).max())
    assert peak <= 1.0, f"peak {20 * np.log10(peak):+.1f} dBFS"
    assert peak > 0.5


def test_5_1_channels_are_each_on_their_side(tmp_path: Path) -> None:
    # GIVEN 5.1 AAC with a tone of its own in each channel
    exprs = [f"0.25*sin(2*PI*{f}*t)" for f in TONES]
    source = _source(tmp_path, exprs, ["-c:a", "aac", "-b:a", "512k"], "tones.mp4")
    # WHEN its audio is published
    levels = _levels_db(_published(source, tmp_path, pieces=False), 0.25)
    left, right = levels
    fl, fr, fc, lfe, bl, br = range(6)
    # THEN the fronts and surrounds are on their own side only, the centre in both at
    # 3 dB under a front, the surrounds as loud as the centre, and the LFE is dropped
    for side, other, channels in ((left, right, (fl, bl)), (right, left, (fr, br))):
        assert all(side[c] > other[c] + 40 for c in channels)
    assert abs(left[fc] - right[fc]) < 0.5
    assert abs(left[fl] - left[fc] - 3.0) < 0.5
    assert abs(right[fr] - right[fc] - 3.0) < 0.5
    assert abs(left[bl] - left[fc]) < 0.5
    assert abs(right[br] - right[fc]) < 0.5
    assert max(left[lfe], right[lfe]) < left[fl] - 40
