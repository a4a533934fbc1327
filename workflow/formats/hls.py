"""Every HLS playlist vidflow writes: VOD and live media playlists, subtitle playlists,
and the multivariant (master) playlist, rendered from plain values."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workflow.media.ladder import Rendition
from workflow.media.subtitles import UNDETERMINED, SubtitleTrack
from workflow.names import AUDIO

# The rendition groups of the master playlist: the audio's and the subtitles'.
AUDIO_GROUP = "aac"
SUBTITLE_GROUP = "subs"
CAPTION_GROUP = "cc"
_GROUP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """One media segment of a playlist; a gap (``EXT-X-GAP``) stands for one that is missing."""

    uri: str
    duration: float
    bytes: int = 0
    gap: bool = False
    # Its timestamps or encoding do not continue the segment before (EXT-X-DISCONTINUITY).
    discontinuity: bool = False
    # The EXT-X-KEY tag it is encrypted under (its key's URI and its own IV), if any.
    key: str | None = None


@dataclass(frozen=True)
class VariantEntry:
    """One ``EXT-X-STREAM-INF`` line of a master playlist."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    frame_rate: float
    codecs: str


@dataclass(frozen=True)
class AudioEntry:
    uri: str
    group: str
    channels: int
    name: str = "Main"
    # BCP 47, where the source says it: the player's audio menu and auto-selection read it.
    language: str | None = None


def rounded_duration(seconds: float) -> int:
    """A segment's duration as RFC 8216 compares it with the target: to the nearest
    integer, halves up."""
    return math.floor(seconds + 0.5)


def target_duration(durations: Iterable[float]) -> int:
    """``EXT-X-TARGETDURATION``: no segment may be longer (beyond a millisecond)."""
    return max(1, math.ceil(max(durations, default=0.0) - 1e-3))


def common_target(playlists: Iterable[Sequence[SegmentEntry]]) -> int:
    """One ``EXT-X-TARGETDURATION`` for media playlists played together: the longest of
    their segments, rounded as RFC 8216 compares them with it."""
    return max([1, *(rounded_duration(s.duration) for segments in playlists for s in segments)])


def media_playlist(
    segments: Sequence[SegmentEntry],
    *,
    init: str | None = None,
    key: str | None = None,
    playlist_type: str | None = "VOD",
    media_sequence: int = 0,
    discontinuity_sequence: int = 0,
    ended: bool = True,
    fixed_target: int | None = None,
    independent: bool = True,
) -> str:
    """A media playlist: VOD (complete), EVENT or a sliding window (``playlist_type``
    None) that ``ended`` closes; fMP4 ones name their ``init``, and ``key`` (an
    ``EXT-X-KEY`` tag) before it covers the init and every segment.

    The target duration covers every segment (``target_duration``), or is
    ``fixed_target``: a live playlist's must never change, so its writer refuses every
    segment that does not fit it once rounded to the nearest integer (RFC 8216). One that
    got in anyway (stored before the refusal existed) raises the target rather than
    making the playlist invalid.
    """
    if fixed_target is None:
        target = target_duration(s.duration for s in segments)
    else:
        target = max([fixed_target, *(rounded_duration(s.duration) for s in segments)])
    # A live playlist may gain an EXT-X-GAP (version 8) at any reload, and RFC 8216
    # (6.2.1) lets a server change one only by appending, removing from the front and
    # counting on: its version cannot rise with its first gap, so it is 8 from the start.
    live = playlist_type != "VOD"
    version = 8 if live or any(s.gap for s in segments) else 3 if init is None else 7
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
    ]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    if playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{playlist_type}")
    if independent:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if key is not None:
        lines.append(key)
    if init is not None:
        lines.append(f'#EXT-X-MAP:URI="{init}"')
    for segment in segments:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.gap:
            lines.append("#EXT-X-GAP")
        if segment.key is not None:
            lines.append(segment.key)
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_playlist(uri: str, duration: float) -> str:
    """A VOD media playlist whose one segment is the whole WebVTT file at ``uri``."""
    if not duration > 0 or not math.isfinite(duration):
        raise ValueError(f"subtitle duration {duration} must be a positive number")
    if not uri or uri.startswith("#") or any(c.isspace() for c in uri):
        raise ValueError(f"{uri!r} cannot be a playlist URI")
    return media_playlist([SegmentEntry(uri, duration)], independent=False)


def subtitle_media_lines(tracks: Sequence[SubtitleTrack], group: str = SUBTITLE_GROUP) -> list[str]:
    """The master playlist's ``EXT-X-MEDIA`` lines for the subtitles group ``group``.

    Each variant must name the group (``SUBTITLES="<group>"``). No track is DEFAULT; a
    player auto-selects one that matches the viewer's language ("und" matches none).
    """
    if not _GROUP_ID.fullmatch(group):
        raise ValueError(f"{group!r} is not a safe GROUP-ID")
    languages = [t.language for t in tracks]
    names = [t.display_name for t in tracks]
    if len(set(languages)) != len(languages) or len(set(names)) != len(names):
        raise ValueError("subtitle tracks must differ in language and name")
    return [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{group}",NAME="{track.display_name}",'
        f'LANGUAGE="{track.language}",DEFAULT=NO,'
        f"AUTOSELECT={'NO' if track.language == UNDETERMINED else 'YES'},"
        f'URI="{track.playlist_uri}"'
        for track in tracks
    ]


def peak_bandwidth(segments: Sequence[SegmentEntry]) -> int:
    """The highest bitrate of any segment, in bits per second."""
    return max((math.ceil(s.bytes * 8 / s.duration) for s in segments if s.duration > 0), default=0)


def average_bandwidth(segments: Sequence[SegmentEntry]) -> int:
    total = sum(s.duration for s in segments)
    return math.ceil(sum(s.bytes for s in segments) * 8 / total) if total > 0 else 0


def measured_variants(
    renditions: Sequence[Rendition],
    playlists: Mapping[str, Sequence[SegmentEntry]],
    frame_rate: float,
    playlist: str = "index.m3u8",
) -> list[VariantEntry]:
    """The master's line for each rung (``<rung>/<playlist>``), with bitrates measured
    from its segments and, where ``playlists`` has an ``"audio"`` entry, the audio's added
    to each."""
    audio = playlists.get(AUDIO, [])
    codecs_audio = ",mp4a.40.2" if AUDIO in playlists else ""
    return [
        VariantEntry(
            uri=f"{rung.name}/{playlist}",
            bandwidth=peak_bandwidth(playlists[rung.name]) + peak_bandwidth(audio),
            average_bandwidth=average_bandwidth(playlists[rung.name]) + average_bandwidth(audio),
            width=rung.width,
            height=rung.height,
            frame_rate=frame_rate,
            codecs=rung.codecs + codecs_audio,
        )
        for rung in renditions
    ]


def master_playlist(
    variants: Sequence[VariantEntry],
    audio: AudioEntry | None,
    *,
    version: int = 4,
    subtitles: Sequence[str] = (),
    subtitle_group: str | None = None,
    captions: bool = False,
) -> str:
    """The multivariant playlist: every rung, the audio rendition group if any,
    ``subtitles`` (ready ``EXT-X-MEDIA`` lines of ``subtitle_group``) and, with
    ``captions``, the CEA-608 captions the rungs' video carries."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += subtitles
    if captions:
        # Safari and AVPlayer offer in-band captions only where the playlist declares
        # them; CC1 is the channel a broadcast's captions take. Not DEFAULT: shown when
        # the viewer asks (AUTOSELECT: a viewer whose device asks for captions).
        lines.append(
            f'#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="{CAPTION_GROUP}",NAME="Captions",'
            'AUTOSELECT=YES,INSTREAM-ID="CC1"'
        )
    if audio is not None:
        language = f'LANGUAGE="{audio.language}",' if audio.language else ""
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{audio.group}",NAME="{audio.name}",{language}'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{audio.channels}",URI="{audio.uri}"'
        )
    for v in variants:
        attributes = [
            f"BANDWIDTH={v.bandwidth}",
            f"AVERAGE-BANDWIDTH={v.average_bandwidth}",
            f"RESOLUTION={v.width}x{v.height}",
            f"FRAME-RATE={v.frame_rate:.3f}",
            f'CODECS="{v.codecs}"',
        ]
        if audio is not None:
            attributes.append(f'AUDIO="{audio.group}"')
        if subtitles and subtitle_group:
            attributes.append(f'SUBTITLES="{subtitle_group}"')
        if captions:
            attributes.append(f'CLOSED-CAPTIONS="{CAPTION_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), v.uri]
    return "\n".join(lines) + "\n"
