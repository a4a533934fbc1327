"""Audio encoded in pieces must join into the audio a whole-file encode makes: the same
samples, and seams that measure no worse against the source than the rest."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workflow.local.binaries import ffmpeg_binary
from workflow.media import audio_pieces, encode
from workflow.media.audio_pieces import SAMPLE_RATE, AudioPiece, plan_audio_pieces
from workflow.media.facts import SourceFacts
from workflow.media.probe import probe
from workflow.media.runner import listed_segments, run_ffmpeg
from workflow.names import AUDIO
from workflow.settings import Limits

# Music-like: a plucked bass and treble that restart every few hundred ms (transients),
# a vibrato tone, and a high decaying partial; another mix on the right.
MUSIC = (
    "aevalsrc=exprs='"
    "0.3*sin(2*PI*220*t)*exp(-3*mod(t\\,0.37))+0.2*sin(2*PI*1320*t+sin(2*PI*3*t))"
    "+0.15*sin(2*PI*5000*t)*exp(-8*mod(t\\,0.53))"
    "|0.3*sin(2*PI*330*t)*exp(-3*mod(t\\,0.29))+0.1*sin(2*PI*2500*t)"
    "+0.1*sin(2*PI*7040*t)*exp(-12*mod(t\\,0.41))'"
)
# +-50 ms around each seam.
WINDOW = SAMPLE_RATE // 20
SEGMENT_SECONDS = 1.0


def _music_clip(directory: Path, rate: int, container: str, seconds: int = 12) -> Path:
    """Small video with music-like audio at ``rate``, AAC at a high bit rate."""
    path = directory / f"music_{rate}_{seconds}s.{container}"
    if not path.exists():
        subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"{MUSIC}:s={rate}:d={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "256k", str(path)],
            check=True,
        )  # fmt: skip
    return path


@dataclass
class Encoded:
    samples: np.ndarray  # decoded, interleaved stereo float32 as (n, 2)
    segments: list[str]
    durations: list[float]


def _facts(source: Path) -> SourceFacts:
    data = source.read_bytes()
    return probe(str(source), head=data[:65536], size=len(data), limits=Limits()).facts


def encode_pieces(
    source: Path, pieces: list[AudioPiece], workdir: Path, quality: str | None = None
) -> Encoded:
    """Encode every piece by its own ffmpeg, then decode the segments in order; with
    ``quality``, at that constant quality instead of the bit rate."""
    facts = _facts(source)
    assert facts.audio is not None
    names, durations, joined = [], [], bytearray()
    for piece in pieces:
        piece_dir = workdir / f"piece{piece.index}"
        (piece_dir / AUDIO).mkdir(parents=True)
        command = encode.build_audio_piece_command(
            str(source),
            facts.container,
            facts.container_start,
            facts.start_time,
            facts.duration,
            piece,
            piece_dir,
            kbps=128,
            source_rate=facts.audio.sample_rate,
            binary=ffmpeg_binary(),
        )
        if quality is not None:
            at = command.index("-b:a")
            command[at : at + 2] = ["-q:a", quality]
        run_ffmpeg(command, timeout=120)
        offset = facts.start_time + encode.TS_OFFSET
        for segment in listed_segments(piece_dir / AUDIO, offset + piece.start, offset + piece.end):
            names.append(segment.path.name)
            durations.append(segment.duration)
            joined += segment.path.read_bytes()
    stream = workdir / "joined.ts"
    stream.write_bytes(bytes(joined))
    return Encoded(_decode(["-f", "mpegts", "-i", str(stream)]), names, durations)


def _decode(args: list[str], filters: str | None = None) -> np.ndarray:
    """Decode to 48 kHz stereo float samples."""
    command = [ffmpeg_binary(), "-nostdin", "-v", "error", *args]
    if filters:
        command += ["-af", filters]
    command += ["-ac", "2", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    raw = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def source_samples(source: Path) -> np.ndarray:
    """The source's audio cut and padded to the video's span, as the encodes see it."""
    facts = _facts(source)
    start, duration = facts.start_time, facts.duration
    downmix = ":".join(f"{k}={v}" for k, v in encode.DOWNMIX.items())
    chain = (
        f"atrim=start={start:.6f}:end={start + duration:.6f},asetpts=PTS-{start:.6f}/TB,"
        f"aresample={SAMPLE_RATE}:async=1:first_pts=0:{downmix},apad=whole_dur={duration:.6f}"
    )
    return _decode(["-i", str(source)], chain)


def _delay(decoded: np.ndarray, truth: np.ndarray) -> int:
    """The decoder's delay: the lag (under 4096 samples) that best matches ``truth``."""
    a, b = decoded[:, 0].astype(np.float64), truth[:, 0].astype(np.float64)
    n = min(len(a), len(b)) - 4096
    scores = [float(np.dot(a[lag : lag + n], b[:n])) for lag in range(4096)]
    return int(np.argmax(scores))


def snr_db(decoded: np.ndarray, truth: np.ndarray) -> float:
    noise = float(np.sum((decoded.astype(np.float64) - truth) ** 2))
    return 10 * np.log10(float(np.sum(truth.astype(np.float64) ** 2)) / max(noise, 1e-20))


def seam_snrs(
    source: Path, piece_seconds: float, workdir: Path, quality: str | None = None
) -> tuple[list[AudioPiece], Encoded, Encoded, list[tuple[float, float]]]:
    """Encode ``source``'s audio whole and in pieces; per seam, the SNR of each against
    the source in the window around it: (whole, pieces)."""
    facts = _facts(source)
    whole_plan = plan_audio_pieces(facts.duration, 3600.0, SEGMENT_SECONDS)
    pieces = plan_audio_pieces(facts.duration, piece_seconds, SEGMENT_SECONDS)
    whole = encode_pieces(source, whole_plan, workdir / "whole", quality)
    parts = encode_pieces(source, pieces, workdir / "pieces", quality)
    truth = source_samples(source)
    delay = _delay(whole.samples, truth)
    snrs = []
    for piece in pieces[1:]:
        seam = piece.start_sample
        lo, hi = seam - WINDOW, min(seam + WINDOW, len(truth))
        reference = truth[lo:hi]
        snrs.append(
            (
                snr_db(whole.samples[lo + delay : hi + delay], reference),
                snr_db(parts.samples[lo + delay : hi + delay], reference),
            )
        )
    return pieces, whole, parts, snrs


def assert_seamless(
    pieces: list[AudioPiece], whole: Encoded, parts: Encoded, snrs: list[Any]
) -> None:
    # THEN the pieces decode to as many samples as the whole-file encode
    assert len(parts.samples) == len(whole.samples)
    # AND the segments are numbered on, piece after piece, and last as long as the whole's
    assert parts.segments == [f"seg_{n:05d}.ts" for n in range(len(parts.segments))]
    assert sum(parts.durations) == pytest.approx(sum(whole.durations), abs=1e-5)
    # AND around every seam the pieces measure within 1 dB of the whole-file encode
    assert len(snrs) == len(pieces) - 1 >= 3
    for seam, (whole_db, pieces_db) in enumerate(snrs, start=1):
        assert pieces_db >= whole_db - 1.0, f"seam {seam}: {pieces_db:.2f} dB, whole {whole_db:.2f}"


@pytest.fixture
def short_preroll(monkeypatch: pytest.MonkeyPatch) -> None:
    """One second of pre-roll, the least the pieces may have: on clips this short the
    usual ten would reach back to the start, and each piece's encoder would see exactly
    what the whole-file encoder saw."""
    monkeypatch.setattr(audio_pieces, "MIN_PREROLL_FRAMES", audio_pieces.FRAMES_PER_SECOND)


# The seams are measured at constant quality (-q:a): in the bit-rate mode the encoder
# steers its quality by its history, which two encodes never share, so two equally good
# encodes differ by more than 1 dB in one 100 ms window out of five or so, wherever they
# are; at constant quality they do not, and a seam's flaw stands out.
QUALITY = "1.2"


@pytest.mark.parametrize(("rate", "container"), [(48000, "mp4")])
def test_music_in_pieces_joins_like_a_whole_encode(
    rate: int, container: str, tmp_path: Path, short_preroll: None
) -> None:
    # GIVEN music-like audio in MP4 (timed in samples; see ``sample_exact``), cut into
    # 2 s pieces (five seams)
    source = _music_clip(tmp_path, rate, container)
    # WHEN it is encoded whole and in pieces
    pieces, whole, parts, snrs = seam_snrs(source, 2.0, tmp_path, QUALITY)
    print(rate, [f"{w:.2f}/{p:.2f}" for w, p in snrs])
    assert_seamless(pieces, whole, parts, snrs)


@pytest.mark.real_media
@pytest.mark.parametrize("name", ["h264_aac51_720p_sparse_gop"])
def test_real_footage_in_pieces_joins_like_a_whole_encode(
    name: str, real_media: dict[str, Path], tmp_path: Path, short_preroll: None
) -> None:
    # GIVEN real footage with music (Big Buck Bunny's score, 48 kHz 5.1), cut into 1 s
    # pieces
    source = real_media[name]
    # WHEN its audio is encoded whole and in pieces
    pieces, whole, parts, snrs = seam_snrs(source, 1.0, tmp_path, QUALITY)
    print(name, [f"{w:.2f}/{p:.2f}" for w, p in snrs])
    assert_seamless(pieces, whole, parts, snrs)


def test_pieces_at_the_bit_rate_are_as_good_as_a_whole_encode(tmp_path: Path) -> None:
    # GIVEN 40 s of music-like audio cut into 8 s pieces, with the full pre-roll
    source = _music_clip(tmp_path, 48000, "mp4", seconds=40)
    # WHEN it is encoded whole and in pieces at the bit rate, as the pipeline does
    _, whole, parts, snrs = seam_snrs(source, 8.0, tmp_path)
    print([f"{w:.2f}/{p:.2f}" for w, p in snrs])
    # THEN the pieces decode to as many samples, and measure as well overall and at the
    # seams on average (each window alone varies by a dB or two either way, see QUALITY)
    assert len(parts.samples) == len(whole.samples)
    truth = source_samples(source)
    delay = _delay(whole.samples, truth)
    n = len(truth)
    overall = [snr_db(e.samples[delay : delay + n], truth) for e in (whole, parts)]
    assert overall[1] >= overall[0] - 0.5
    assert np.mean([p - w for w, p in snrs]) >= -1.0


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # silent seams
@pytest.mark.parametrize("sound", ["ends early", "starts late"])
def test_pieces_fed_no_sound_at_all_are_silence_in_their_place(
    sound: str, tmp_path: Path, short_preroll: None
) -> None:
    # GIVEN 16 s of video with 3 s of sound, at its start or its end: the 4 s pieces away
    # from it are fed (with their pre-roll) no audio at all
    source = tmp_path / "sparse.mp4"
    late = ["-itsoffset", "13"] if sound == "starts late" else []
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=16",
         *late, "-f", "lavfi", "-i", f"{MUSIC}:s=48000:d=3",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "256k", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN its audio is encoded whole and in 4 s pieces (whose segments must follow each
    # other, as the pipeline checks: silence timed from 0 was a piece's feed start early)
    pieces, whole, parts, _ = seam_snrs(source, 4.0, tmp_path, QUALITY)
    # THEN the pieces decode to as many samples as the whole-file encode
    assert len(pieces) == 4
    assert len(parts.samples) == len(whole.samples)

    # AND the sound is where the whole-file encode has it, and only there
    def loudness(encoded: Encoded) -> list[float]:
        seconds = encoded.samples[: 16 * SAMPLE_RATE].reshape(16, SAMPLE_RATE, 2)
        return [float(np.sqrt(np.mean(second.astype(np.float64) ** 2))) for second in seconds]

    heard = [second for second, level in enumerate(loudness(whole)) if level > 0.01]
    assert heard == ([0, 1, 2, 3] if sound == "ends early" else [13, 14, 15])
    assert loudness(parts) == pytest.approx(loudness(whole), abs=0.01)
