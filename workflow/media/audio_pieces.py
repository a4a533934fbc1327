"""Cut the output audio into pieces on the global AAC frame grid, each encoded on its own.

The output audio is 48 kHz and starts at the video's first instant: output sample 0.
AAC codes it in frames of 1024 samples counted from there. Piece k covers the output
samples ``[k * P * 1024, (k + 1) * P * 1024)`` (the last one runs to the end), so every
piece starts on a frame of that one grid, and its segments are cut within it. Each piece's
encoder is fed from ten seconds before its start (``preroll_frames``) and a few
frames past its end (``POSTROLL_FRAMES``): the packets outside the piece, and the encoder's
priming packet, are dropped, so the pieces join with no missing or duplicate sample and
the decoder's overlap-add at a seam combines two codings of the same signal.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workflow.shapes import known_fields

SAMPLE_RATE = 48000
FRAME = 1024
# Ten seconds of pre-roll. ffmpeg's AAC encoder steers its quality (lambda) towards the
# bit rate by a few percent a frame: started cold, it codes its first ~6 s some 8 dB
# worse than once settled (measured at 128 kbit/s), so a second of pre-roll would leave
# every piece with a poor start. Ten seconds cost ~0.2 s of decoding and AAC a piece.
FRAMES_PER_SECOND = math.ceil(SAMPLE_RATE / FRAME)
PREROLL_SECONDS = 10
MIN_PREROLL_FRAMES = PREROLL_SECONDS * FRAMES_PER_SECOND
# A piece's last packet is a transform over its own frame and the next, and the encoder
# looks half a frame further ahead to choose its window: feed it four frames past the end.
POSTROLL_FRAMES = 4
# The most segments one piece may have. ffmpeg's segment muxer takes a piece's cuts in one
# argument ("41184.989333,..."), and Linux, Lambda's too, refuses to start a program with an
# argument over 128 KiB (MAX_ARG_STRLEN, E2BIG): 9,000 cuts of up to 14 bytes fit, for audio
# up to 277 h. Audio in one piece (``sample_exact``) at 1 s segments passes it at 2.5 h.
MAX_PIECE_SEGMENTS = 9_000


@dataclass(frozen=True)
class AudioPiece:
    """Output samples ``[start_sample, end_sample)`` of the audio, encoded by one job.

    ``segment_starts`` are the output samples where each of its HLS segments begins (the
    first is ``start_sample``); they are numbered on from ``first_segment``. ``last`` says
    that the piece runs to the end of the audio, padded to the video's duration.
    """

    index: int
    start_sample: int
    end_sample: int
    first_segment: int
    segment_starts: list[int]
    last: bool

    @property
    def start(self) -> float:
        """Seconds from the video's first instant to the piece's first sample."""
        return self.start_sample / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.end_sample / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def frames(self) -> int:
        """The AAC frames (packets) the piece keeps, but the last piece's tail."""
        return (self.end_sample - self.start_sample) // FRAME

    @property
    def item(self) -> str:
        """The piece's name as a work item: its result and error records are named so."""
        return f"audio-{self.index:05d}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioPiece:
        return cls(**known_fields(cls, data))


def total_samples(duration: float) -> int:
    """The output's samples for a video ``duration`` seconds long, as ``apad`` counts them
    from the microseconds ffmpeg is given."""
    return round(round(duration * 1e6) * SAMPLE_RATE / 1e6)


def sample_exact(container: str, sample_rate: int) -> bool:
    """Whether a piece decoded from a seek into the source lays its samples where a read
    from the top does: measured so for 48 kHz audio in MP4/MOV (timed in samples) and
    MPEG-TS (whose 90 kHz clock times 48 kHz AAC frames exactly). Matroska's milliseconds
    round a frame's time by up to half a millisecond, and 44.1 kHz audio in MP4 came out
    misplaced after a seek too (3.9 dB at a seam instead of 38.8): those stay one piece."""
    return sample_rate == SAMPLE_RATE and container in ("mov", "mpegts")


def plan_audio_pieces(
    duration: float, piece_seconds: float, segment_seconds: float
) -> list[AudioPiece]:
    """Pieces of ``piece_seconds`` (rounded to whole segments, at least one, then to whole
    frames) over a ``duration`` long output; a remainder under half a piece joins the last
    one, so a file under one and a half pieces is one piece. ``piece_seconds`` 0 makes one
    piece.

    Each piece starts a segment, so a piece that was not whole segments would end in a
    short one: 0.001 s made a 30 s clip 1,406 pieces, each a 21 ms segment."""
    total = total_samples(duration)
    if piece_seconds > 0:
        piece_seconds = max(1, round(piece_seconds / segment_seconds)) * segment_seconds
    piece_frames = max(1, round(piece_seconds * SAMPLE_RATE / FRAME))
    count = max(1, round(total / (piece_frames * FRAME))) if piece_seconds > 0 else 1
    pieces: list[AudioPiece] = []
    first_segment = 0
    for index in range(count):
        start = index * piece_frames * FRAME
        last = index == count - 1
        end = total if last else start + piece_frames * FRAME
        starts = segment_starts(start, end, segment_seconds)
        pieces.append(AudioPiece(index, start, end, first_segment, starts, last))
        first_segment += len(starts)
    return pieces


def segment_starts(start: int, end: int, segment_seconds: float) -> list[int]:
    """Segment starts from ``start`` every ``segment_seconds``, each on the first frame
    boundary at or after its time; no tail under a quarter of a segment."""
    starts = [start]
    step = segment_seconds * SAMPLE_RATE
    for k in range(1, math.ceil((end - start) / step) + 1):
        at = start + math.ceil(k * step / FRAME - 1e-9) * FRAME
        if at > end - step / 4 or at >= end:
            break
        starts.append(at)
    return starts


def preroll_frames(piece: AudioPiece, source_rate: int) -> int:
    """Frames of pre-roll fed to ``piece``'s encoder before its start: at least
    ``PREROLL_SECONDS`` (or back to the start), and enough more that the first one is a
    sample of the source at its own rate, so the resampler lays the source on the 48 kHz
    grid with the phase a whole-file encode has (its first output sample is the source
    sample at the video's start)."""
    frames = piece.start_sample // FRAME
    if frames <= MIN_PREROLL_FRAMES:
        return frames
    # Output samples F map to source samples F * rate / 48000: a whole number when F is a
    # multiple of ``step``.
    step = SAMPLE_RATE // math.gcd(source_rate or SAMPLE_RATE, SAMPLE_RATE)
    for preroll in range(MIN_PREROLL_FRAMES, frames + 1):
        if (frames - preroll) * FRAME % step == 0:
            return preroll
    return frames
