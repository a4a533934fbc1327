"""The ABR ladder: which renditions a source gets, never above its own size."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

from workflow.errors import ConfigurationError
from workflow.shapes import known_fields

# x264's VBV buffer starts this full (x264's default: 0.9). Every chunk and every live
# segment starts its own x264, whose one-pass rate control has not yet learnt the picture:
# with a nearly full buffer it spent 2.4x the bits a warm encoder does on its first
# keyframe (479 KB against 200 KB at 1080p, 5 Mb/s, bench source) and then starved the next
# second of frames (1-5 KB against 20), 3-4 VMAF points down at every chunk start. Half
# full keeps that keyframe near a warm encoder's size: on the 60 s bench source, 12 s
# chunks scored 0.10 VMAF below one encode of the whole file, against 0.27 at 0.9. On a
# single chunk 0.6 and 0.2 scored lower, and 0.4 slightly higher but by crushing that
# keyframe to 56 KB: too near the edge to pick (bench/README.md).
VBV_INIT = 0.5
# x264 writes the lowest profile its tools need, and its ultrafast preset (a template
# choice) turns off the 8x8 transform, CABAC and B-frames: Constrained Baseline, under
# CODECS and DASH codecs that say High. The 8x8 transform is High's: every rung is High.
HIGH_PROFILE_TOOLS = "8x8dct=1"

# H.264 levels (Annex A, Table A-1) as (name, max macroblocks per second, max
# macroblocks per frame, max bitrate in kbit/s and max VBV buffer in kbit for the High
# profile: 1.25 times the table's).
_LEVELS = (
    ("3.0", 40_500, 1_620, 12_500, 12_500),
    ("3.1", 108_000, 3_600, 17_500, 17_500),
    ("3.2", 216_000, 5_120, 25_000, 25_000),
    ("4.0", 245_760, 8_192, 25_000, 31_250),
    ("4.1", 245_760, 8_192, 62_500, 78_125),
    ("4.2", 522_240, 8_704, 62_500, 78_125),
    ("5.0", 589_824, 22_080, 168_750, 168_750),
    ("5.1", 983_040, 36_864, 300_000, 300_000),
    ("5.2", 2_073_600, 36_864, 300_000, 300_000),
    ("6.0", 4_177_920, 139_264, 300_000, 300_000),
    ("6.1", 8_355_840, 139_264, 600_000, 600_000),
    ("6.2", 16_711_680, 139_264, 1_000_000, 1_000_000),
)
# The highest rung bitrate any level allows: its VBV buffer (twice it) in level 6.2's.
MAX_KBPS = _LEVELS[-1][4] // 2
# The smallest side a source or a rung may have: the quality scorer (libvmaf) crashes on a
# picture 16 pixels or less across, and nothing watchable is that small.
MIN_SIDE = 32
# The longest side x264 opens an encoder for ("invalid width x height" past it).
MAX_SIDE = 16384
# The most rungs a ladder may have (Apple's HLS authoring example has nine video tiers):
# every chunk, and every live segment, is encoded into each, so a venue's stream.json of
# 9 KB listing every side from 1080 to 32 would encode each segment 1049 times.
MAX_RUNGS = 12


@dataclass(frozen=True)
class Rendition:
    """One rung: an H.264 High-profile 8-bit 4:2:0 video at a fixed size and bitrate."""

    name: str
    width: int
    height: int
    kbps: int
    level: str

    @property
    def maxrate_kbps(self) -> int:
        return math.ceil(self.kbps * 1.1)

    @property
    def bufsize_kbps(self) -> int:
        return self.kbps * 2

    @property
    def rate_control(self) -> dict[str, str]:
        """libx264's output options for this rung's one-pass rate control: an average
        bitrate, capped by a VBV buffer that starts ``VBV_INIT`` full (and the High
        profile's 8x8 transform, whatever the preset: ``HIGH_PROFILE_TOOLS``)."""
        return {
            "b:v": f"{self.kbps}k",
            "maxrate": f"{self.maxrate_kbps}k",
            "bufsize": f"{self.bufsize_kbps}k",
            "x264-params": f"vbv-init={VBV_INIT}:{HIGH_PROFILE_TOOLS}",
        }

    @property
    def codecs(self) -> str:
        """The RFC 6381 codec string for this rung's video."""
        major, minor = self.level.split(".")
        return f"avc1.6400{int(major) * 10 + int(minor):02x}"

    def at_rate(self, kbps: int, name: str) -> Rendition:
        """This size at another bitrate, as ``name``: its level raised where that rate's
        peak or VBV buffer needs a higher one (what its frame rate needs, its level holds
        already)."""
        needed = h264_level(self.width, self.height, 1.0, kbps)
        level = max(self.level, needed, key=[row[0] for row in _LEVELS].index)
        return Rendition(name, self.width, self.height, kbps, level)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendition:
        return cls(**known_fields(cls, data))


def parse_ladder(spec: str) -> list[tuple[int, int]]:
    """Parse ``"1080:5000,720:2800"`` into (short side, kbps) pairs, largest first."""
    rungs = []
    for part in spec.split(","):
        try:
            side, kbps = (int(x) for x in part.strip().split(":"))
        except ValueError:
            raise ConfigurationError(f"LADDER entries look like 720:2800, got {part!r}") from None
        if side < MIN_SIDE or not 0 < kbps <= MAX_KBPS:
            raise ConfigurationError(
                f"LADDER entry {part!r} is out of range: sides from {MIN_SIDE}, bitrates 1 to "
                f"{MAX_KBPS} kbps"
            )
        rungs.append((side, kbps))
    if not rungs:
        raise ConfigurationError("LADDER is empty")
    if len(rungs) > MAX_RUNGS:
        raise ConfigurationError(f"LADDER has {len(rungs)} rungs; at most {MAX_RUNGS}")
    sides = [side for side, _ in rungs]
    repeated = sorted({side for side in sides if sides.count(side) > 1})
    if repeated:  # each rung is named, and written to a folder, by its size
        raise ConfigurationError(f"LADDER has more than one {repeated[0]}p rung")
    rungs.sort(reverse=True)
    for (side, kbps), (lower, lower_kbps) in itertools.pairwise(rungs):
        if _even(side) == _even(lower):
            # 1080 and 1079: two rungs of one picture, each encoded and stored
            raise ConfigurationError(
                f"LADDER's {side}p and {lower}p rungs are one size ({_even(side)} made even)"
            )
        if lower_kbps >= kbps:
            # a player stepping down for bandwidth would get the same or more bits
            raise ConfigurationError(
                f"LADDER's {lower}p rung ({lower_kbps} kbps) must cost less than its "
                f"{side}p rung ({kbps} kbps)"
            )
    return rungs


# A source between two rungs gets a rung at its own size where its short side is more
# than this times the largest rung it keeps (1290x726 keeps 720p alone: the same picture).
OWN_RUNG_ABOVE = 1.1


def build_ladder(
    display_width: int, display_height: int, frame_rate: float, spec: str
) -> list[Rendition]:
    """Renditions for a source of the given display size, largest first.

    A rung's size names the short side (720p is 1280x720 landscape or 720x1280
    portrait); rungs larger than the source are dropped, and a source smaller than
    every rung gets one rung at its own size. So does one between two rungs, its short
    side more than ``OWN_RUNG_ABOVE`` times the largest it keeps, as its top rung:
    1920x1078, PAL's 1024x576 or a 2.40:1 film's 1920x800 kept 720p, 480p and 1728x720.
    """
    short, long_ = sorted((display_width, display_height))
    aspect = long_ / short
    specified = parse_ladder(spec)
    rungs = [(side, kbps) for side, kbps in specified if side <= short]
    if not rungs:
        # The smallest rung's bitrate, scaled down to the source (never below 64 kbps).
        side, kbps = specified[-1]
        rungs = [(short, max(64, _scaled_kbps(kbps, side, short, long_)))]
    elif len(rungs) < len(specified) and short > rungs[0][0] * OWN_RUNG_ABOVE:
        # The next larger rung's bitrate, scaled down to the source, never below the rung
        # under it.
        side, kbps = specified[len(specified) - len(rungs) - 1]
        rungs.insert(0, (short, max(rungs[0][1], _scaled_kbps(kbps, side, short, long_))))
    renditions = []
    for side, kbps in rungs:
        # Nearest even size, but never above the source's own (floored to even).
        short_side = min(_even(side), short - short % 2)
        long_side = min(_even(short_side * aspect), long_ - long_ % 2)
        if display_width >= display_height:
            width, height = long_side, short_side
        else:
            width, height = short_side, long_side
        renditions.append(
            Rendition(f"{side}p", width, height, kbps, h264_level(width, height, frame_rate, kbps))
        )
    return renditions


def _scaled_kbps(kbps: int, side: int, short: int, long_: int) -> int:
    """A ``side`` rung's ``kbps`` for a smaller source: by its short side, or by its
    pixels where it has more of them than that says (a 1920x120 banner holds as many as
    640x360, not a ninth; a 2.40:1 film's 1920x800 three quarters of 1080p's), never above
    the rung's own."""
    share = max((short / side) ** 2, short * long_ / (side * side * 16 / 9))
    return round(kbps * min(1.0, share))


def h264_level(width: int, height: int, frame_rate: float, kbps: int = 0) -> str:
    """The lowest H.264 level that allows this frame size at this rate and a rung of
    ``kbps`` (its peak and VBV buffer, ``Rendition``'s): its macroblocks per frame and
    per second, each side at most sqrt(8 x MaxFS) macroblocks (Annex A), which a very
    wide or tall picture meets first, and its bitrate and buffer. A level signalled below
    what the stream needs lets a decoder refuse it or run out of buffer."""
    across, down = math.ceil(width / 16), math.ceil(height / 16)
    per_frame = across * down
    per_second = per_frame * max(frame_rate, 1.0)
    rung = Rendition("", width, height, kbps, "")
    for name, max_rate, max_frame, max_kbps, max_buffer in _LEVELS:
        longest = math.sqrt(8 * max_frame)
        if (
            per_frame <= max_frame
            and per_second <= max_rate
            and max(across, down) <= longest
            and rung.maxrate_kbps <= max_kbps
            and rung.bufsize_kbps <= max_buffer
        ):
            return name
    return _LEVELS[-1][0]


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
