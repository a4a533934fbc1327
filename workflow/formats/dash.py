"""The DASH manifest (MPD) of a CMAF asset: the same fMP4 segments the HLS playlists list.

One static Period; one AdaptationSet for the video rungs (they cut at the same
instants, so they share one ``SegmentTimeline``), one for the audio, one per subtitle
language (a side-loaded WebVTT file). Times are in each track's own timescale, taken
from its init segment, and ``presentationTimeOffset`` maps the first segment to 0.
"""

from __future__ import annotations

import itertools
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from workflow.formats.hls import SegmentEntry
from workflow.names import AUDIO, SEGMENT_DIGITS, SEGMENT_PREFIX

NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
MEDIA_PATTERN = f"$RepresentationID$/{SEGMENT_PREFIX}$Number%0{SEGMENT_DIGITS}d$.m4s"
INIT_PATTERN = "$RepresentationID$/init.mp4"
# Common encryption (ISO 23001-7) in the MPD, and the W3C ClearKey system.
MP4_PROTECTION = "urn:mpeg:dash:mp4protection:2011"
CLEAR_KEY = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
CENC_NAMESPACE = "urn:mpeg:cenc:2013"
DASHIF_NAMESPACE = "https://dashif.org/CPS"
# CEA-608 captions in the video's SEI (SCTE 214-1): dash.js and shaka-player offer them
# only where the video's AdaptationSet says so.
CEA608 = "urn:scte:dash:cc:cea-608:2015"


@dataclass(frozen=True)
class Track:
    """Segments of one AdaptationSet on their presentation timeline (seconds)."""

    start: float
    segments: Sequence[SegmentEntry]
    timescale: int
    # How far before ``start`` the first segment's media begins: the AAC encoder's priming
    # packet, kept in the audio's first fragment (``tfdt`` that much earlier) and left
    # before the period by ``presentationTimeOffset``, which stays at ``start``.
    lead: float = 0.0


@dataclass(frozen=True)
class VideoRepresentation:
    id: str
    bandwidth: int
    width: int
    height: int
    codecs: str


@dataclass(frozen=True)
class Protection:
    """A cbcs asset's key: its id (hex) and the ClearKey license server answering it."""

    key_id: str
    license_url: str


@dataclass(frozen=True)
class TextTrack:
    language: str
    uri: str


def timeline(track: Track) -> list[dict[str, int]]:
    """``S`` elements (``t``, ``d``, ``r``) for the segments, runs of equal duration merged.

    Each start is rounded to a tick once and each duration is the difference of two
    rounded starts, so the timeline never drifts from the segments' real times.
    """
    starts = [track.start]
    for segment in track.segments:
        starts.append(starts[-1] + segment.duration)
    starts[0] -= track.lead  # (the first segment's media is that much longer)
    ticks = [round(t * track.timescale) for t in starts]
    entries: list[dict[str, int]] = []
    for begin, end in itertools.pairwise(ticks):
        duration = end - begin
        if entries and entries[-1]["d"] == duration:
            entries[-1]["r"] += 1
        else:
            entries.append({"t": begin, "d": duration, "r": 0})
    return entries


def mpd(
    *,
    duration: float,
    segment_seconds: float,
    video: Track,
    representations: Sequence[VideoRepresentation],
    frame_rate: float,
    audio: Track | None = None,
    audio_bandwidth: int = 0,
    audio_language: str | None = None,
    text: Sequence[TextTrack] = (),
    protection: Protection | None = None,
    captions: bool = False,
) -> str:
    """The MPD, as a UTF-8 XML document: one period, the video's adaptation set, the
    audio's if any, then one per subtitle language; with ``protection``, the video and
    audio sets say they are cbcs-encrypted under its key, and where ClearKey gets it;
    with ``captions``, the video set declares the CEA-608 captions its video carries."""
    attributes = {
        "xmlns": NAMESPACE,
        "profiles": PROFILE,
        "type": "static",
        "mediaPresentationDuration": _duration(duration),
        "minBufferTime": _duration(segment_seconds),
    }
    if protection is not None:
        attributes |= {"xmlns:cenc": CENC_NAMESPACE, "xmlns:dashif": DASHIF_NAMESPACE}
    root = ET.Element("MPD", attributes)
    period = ET.SubElement(root, "Period", {"id": "0", "start": "PT0S"})
    _video_set(period, video, representations, frame_rate, protection, captions)
    if audio is not None:
        _audio_set(period, audio, audio_bandwidth, audio_language, protection)
    for i, track in enumerate(text, start=2):
        _text_set(period, str(i), track)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _video_set(
    period: ET.Element,
    video: Track,
    representations: Sequence[VideoRepresentation],
    frame_rate: float,
    protection: Protection | None,
    captions: bool,
) -> None:
    videos = ET.SubElement(
        period,
        "AdaptationSet",
        {
            "id": "0",
            "contentType": "video",
            "mimeType": "video/mp4",
            "segmentAlignment": "true",
            "startWithSAP": "1",
            "maxWidth": str(max(r.width for r in representations)),
            "maxHeight": str(max(r.height for r in representations)),
            "frameRate": _frame_rate(frame_rate),
        },
    )
    # @par must equal every representation's width:height at sar 1:1 (ISO 23009-1
    # 5.3.3.2); rungs rounded to even sizes (852x480 beside 640x360) show none in common.
    aspects = {_aspect(r.width, r.height) for r in representations}
    if len(aspects) == 1:
        videos.set("par", aspects.pop())
    _content_protection(videos, protection)
    if captions:
        # CC1, as the HLS masters declare them: the channel a broadcast's captions take.
        ET.SubElement(videos, "Accessibility", {"schemeIdUri": CEA608, "value": "CC1"})
    _segment_template(videos, video)
    for rep in representations:
        ET.SubElement(
            videos,
            "Representation",
            {
                "id": rep.id,
                "bandwidth": str(rep.bandwidth),
                "width": str(rep.width),
                "height": str(rep.height),
                "sar": "1:1",
                "codecs": rep.codecs,
            },
        )


def _audio_set(
    period: ET.Element,
    audio: Track,
    bandwidth: int,
    language: str | None,
    protection: Protection | None,
) -> None:
    sound = ET.SubElement(
        period,
        "AdaptationSet",
        {
            "id": "1",
            "contentType": "audio",
            "mimeType": "audio/mp4",
            "segmentAlignment": "true",
            "startWithSAP": "1",
            "lang": language or "und",
        },
    )
    ET.SubElement(
        sound,
        "AudioChannelConfiguration",
        {
            "schemeIdUri": "urn:mpeg:dash:23003:3:audio_channel_configuration:2011",
            "value": "2",
        },
    )
    _content_protection(sound, protection)
    _segment_template(sound, audio)
    ET.SubElement(
        sound,
        "Representation",
        {
            "id": AUDIO,
            "bandwidth": str(bandwidth),
            "codecs": "mp4a.40.2",
            "audioSamplingRate": "48000",
        },
    )


def _text_set(period: ET.Element, set_id: str, track: TextTrack) -> None:
    subtitles = ET.SubElement(
        period,
        "AdaptationSet",
        {"id": set_id, "contentType": "text", "mimeType": "text/vtt", "lang": track.language},
    )
    ET.SubElement(
        subtitles, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"}
    )
    representation = ET.SubElement(
        subtitles, "Representation", {"id": f"text-{track.language}", "bandwidth": "256"}
    )
    ET.SubElement(representation, "BaseURL").text = track.uri


def _content_protection(parent: ET.Element, protection: Protection | None) -> None:
    """The scheme and key id every DRM system reads (``mp4protection``), and ClearKey's
    license server (a SPEKE vendor's systems would join it here)."""
    if protection is None:
        return
    kid = str(uuid.UUID(hex=protection.key_id))
    ET.SubElement(
        parent,
        "ContentProtection",
        {"schemeIdUri": MP4_PROTECTION, "value": "cbcs", "cenc:default_KID": kid},
    )
    clear_key = ET.SubElement(
        parent, "ContentProtection", {"schemeIdUri": CLEAR_KEY, "value": "ClearKey1.0"}
    )
    ET.SubElement(clear_key, "dashif:Laurl").text = protection.license_url


def _segment_template(parent: ET.Element, track: Track) -> None:
    template = ET.SubElement(
        parent,
        "SegmentTemplate",
        {
            "timescale": str(track.timescale),
            "presentationTimeOffset": str(round(track.start * track.timescale)),
            "initialization": INIT_PATTERN,
            "media": MEDIA_PATTERN,
            "startNumber": "0",
        },
    )
    entries = ET.SubElement(template, "SegmentTimeline")
    for i, entry in enumerate(timeline(track)):
        attributes = {"d": str(entry["d"])}
        if i == 0:
            attributes = {"t": str(entry["t"]), **attributes}
        if entry["r"]:
            attributes["r"] = str(entry["r"])
        ET.SubElement(entries, "S", attributes)


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _frame_rate(rate: float) -> str:
    """``@frameRate``: a whole rate, an NTSC one (N x 1000/1001), else the fraction it is
    (12.5 fps is 25/2); ``rate`` is the probe's, to three decimals."""
    if abs(rate - round(rate)) < 0.01:
        return str(round(rate))
    ntsc = round(rate * 1.001) * 1000
    if abs(rate - ntsc / 1001) < 0.01:
        return f"{ntsc}/1001"
    exact = Fraction(rate).limit_denominator(1000)
    return f"{exact.numerator}/{exact.denominator}"


def _aspect(width: int, height: int) -> str:
    divisor = gcd(width, height)
    return f"{width // divisor}:{height // divisor}"
