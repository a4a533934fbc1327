"""What a probe found out about a source, as the rest of the pipeline reads it.

Apart from ``probe`` because PyAV, which the probe needs, ships only to the two probing
functions; every other step reads these records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workflow.shapes import known_fields


@dataclass(frozen=True)
class SourceFacts:
    """What the upload is, as far as the pipeline needs to know."""

    container: str
    container_start: float
    size_bytes: int
    duration: float
    start_time: float
    video_codec: str
    profile: str | None
    pix_fmt: str
    bit_depth: int
    coded_width: int
    coded_height: int
    display_width: int
    display_height: int
    rotation: int
    frame_rate: float
    variable_frame_rate: bool
    video_bitrate: int | None
    audio: AudioFacts | None
    keyframe_count: int  # keyframes the container's index lists: 0 where it is cut by time
    interlaced: bool = False  # its first picture is two fields (a broadcast feed's 1080i)
    # Its video carries CEA-608/708 captions (kept in every rung; the master declares them)
    captions: bool = False
    hdr: str | None = None  # "pq" or "hlg": an HDR picture, tone-mapped to SDR for the rungs
    # The colour properties it leaves unsaid, as they are taken (``picture.assumed_colour``)
    assumed_colour: dict[str, str] = field(default_factory=dict)
    # The subtitle tracks in the file, as "<language> (<codec>)": only sidecar files are
    # published, and the manifest says what was not.
    subtitles_left_out: list[str] = field(default_factory=list)
    # The audio tracks in the file other than the one published, named alike.
    audio_left_out: list[str] = field(default_factory=list)
    # Its data tracks (timecode, timed ID3, SCTE-35, KLV), named alike: never published.
    data_left_out: list[str] = field(default_factory=list)
    # The most frames any second holds, where the rate varies and an index lists every
    # frame (a phone's screen recording: 60 fps while the screen moves, a few when still);
    # else ``frame_rate`` (0 in a record written before it was measured).
    peak_frame_rate: float = 0.0

    @property
    def max_frame_rate(self) -> float:
        """The rate the rungs' level and HLS's FRAME-RATE (the most any of a variant's
        video reaches, RFC 8216) must allow: the busiest second's, not the average."""
        return max(self.frame_rate, self.peak_frame_rate)

    @property
    def audio_language(self) -> str | None:
        """The audio's language as HLS and DASH name it; None without audio or a tag."""
        return self.audio.language if self.audio else None

    def to_dict(self) -> dict[str, Any]:
        # Fields added with ``shapes.known_fields`` are written only where they say
        # something: a reader from before it (a function not yet updated while the stack
        # deploys, or after a rollback) takes no field it does not know.
        data = asdict(self)
        if not self.subtitles_left_out:
            del data["subtitles_left_out"]
        if not self.audio_left_out:
            del data["audio_left_out"]
        if not self.data_left_out:
            del data["data_left_out"]
        if not self.captions:
            del data["captions"]
        if self.peak_frame_rate <= self.frame_rate:  # (0: read from a record without it)
            del data["peak_frame_rate"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceFacts:
        audio = data.get("audio")
        return cls(
            **{
                **known_fields(cls, data),
                "audio": None if audio is None else AudioFacts(**known_fields(AudioFacts, audio)),
            }
        )


@dataclass(frozen=True)
class AudioFacts:
    codec: str
    channels: int
    sample_rate: int
    start_time: float
    # Its language as HLS and DASH name it (``subtitles.stream_language``); None unsaid.
    language: str | None = None
    # Its number among the file's audio streams (ffmpeg's ``0:a:N``): the one encoded.
    index: int = 0
