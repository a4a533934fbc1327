"""Names every part of the output agrees on: segment files, the audio's rung, CMAF's init.

ffmpeg writes them (``segment_pattern``), the playlists and the DASH template point at
them, and the live playlists compute them from a sequence number.
"""

from __future__ import annotations

# The audio's rung: its folder, its playlist and its work item are named so.
AUDIO = "audio"
# Each CMAF rung's one initialization segment, beside its fragments.
CMAF_INIT = "init.mp4"

SEGMENT_PREFIX = "seg_"
SEGMENT_DIGITS = 5


def segment_name(number: int, suffix: str = ".ts") -> str:
    """The file name of segment ``number``: ``seg_00042.ts``."""
    return f"{SEGMENT_PREFIX}{number:0{SEGMENT_DIGITS}d}{suffix}"


def segment_number(name: str) -> int:
    """The number in a segment's file name: 42 for ``seg_00042.ts``."""
    return int(name.removeprefix(SEGMENT_PREFIX).partition(".")[0])


def segment_pattern(suffix: str) -> str:
    """The same names as ffmpeg's segment muxer pattern: ``seg_%05d.ts``."""
    return f"{SEGMENT_PREFIX}%0{SEGMENT_DIGITS}d{suffix}"
