"""HLS playlists, checked by parsing them back with the m3u8 package."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import m3u8
import pytest

from workflow.formats.hls import (
    AudioEntry,
    SegmentEntry,
    VariantEntry,
    average_bandwidth,
    common_target,
    master_playlist,
    media_playlist,
    peak_bandwidth,
    target_duration,
)
from workflow.media.subtitles import _ISO_639_2, stream_language

DURATION_SETS = [
    pytest.param([4.0, 4.0, 4.0, 2.5], id="even-4s"),
    pytest.param([4.004, 4.004, 3.003], id="ntsc"),
    pytest.param([4.9, 4.0, 1.0], id="long-first"),
    pytest.param([4.5, 4.4999], id="half-second-over"),
    pytest.param([0.5], id="half-second-source"),
    pytest.param([20.0, 20.0, 7.0], id="sparse-keyframes"),
    pytest.param([4.0004, 3.9996], id="a-hair-over"),
]


def segments_of(durations: list[float]) -> list[SegmentEntry]:
    return [SegmentEntry(f"seg_{i:05d}.ts", d, 100_000 + i) for i, d in enumerate(durations)]


def nearest_integer(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("durations", DURATION_SETS)
def test_media_playlist_is_a_complete_vod_playlist_in_order(durations: list[float]) -> None:
    # GIVEN segments in playback order
    segments = segments_of(durations)

    # WHEN the media playlist is rendered and parsed back
    parsed = m3u8.loads(media_playlist(segments))

    # THEN it is a finished VOD playlist listing every segment in order with its duration
    assert parsed.is_endlist
    assert parsed.playlist_type == "vod"
    assert parsed.media_sequence == 0
    assert [s.uri for s in parsed.segments] == [s.uri for s in segments]
    assert [s.duration for s in parsed.segments] == pytest.approx(durations, abs=1e-6)


@pytest.mark.parametrize("durations", DURATION_SETS)
def test_target_duration_covers_every_segment(durations: list[float]) -> None:
    # GIVEN segments of these durations
    text = media_playlist(segments_of(durations))

    # WHEN the playlist is parsed back
    parsed = m3u8.loads(text)

    # THEN (RFC 8216 4.3.3.1) every EXTINF rounded to the nearest integer is at most
    # EXT-X-TARGETDURATION, which is a positive integer and no larger than it must be
    assert isinstance(parsed.target_duration, int) and parsed.target_duration >= 1
    for segment in parsed.segments:
        assert nearest_integer(segment.duration) <= parsed.target_duration
        assert segment.duration <= parsed.target_duration + 1e-3
    assert parsed.target_duration <= max(1, math.ceil(max(durations)))


def test_target_duration_of_4_4_and_4_6_second_segments() -> None:
    # GIVEN 4.4 s and 4.6 s segments
    # WHEN / THEN the target duration is 5: an integer no segment exceeds
    assert target_duration([4.4, 4.6]) == 5
    # and exactly 4 s segments need no more than 4
    assert target_duration([4.0, 4.0]) == 4


def test_extinf_keeps_sub_millisecond_precision() -> None:
    # GIVEN an NTSC segment of 1001/250 s
    text = media_playlist(segments_of([4.004]))

    # WHEN / THEN its duration is written as a decimal, not rounded to seconds
    assert "#EXTINF:4.004000," in text.splitlines()


def test_bandwidths_are_bits_per_second_peak_and_average() -> None:
    # GIVEN a 4 s segment of 500 000 bytes (1 Mb/s) and a 2 s one of 400 000 bytes (1.6 Mb/s)
    segments = [SegmentEntry("a.ts", 4.0, 500_000), SegmentEntry("b.ts", 2.0, 400_000)]

    # WHEN / THEN the peak is the busiest segment and the average is bytes over time
    assert peak_bandwidth(segments) == 1_600_000
    assert average_bandwidth(segments) == 1_200_000
    assert average_bandwidth(segments) <= peak_bandwidth(segments)
    assert peak_bandwidth([]) == 0 and average_bandwidth([]) == 0


VARIANTS = [
    VariantEntry(
        "1080p/index.m3u8", 5_600_000, 5_100_000, 1920, 1080, 29.97, "avc1.640028,mp4a.40.2"
    ),
    VariantEntry(
        "720p/index.m3u8", 3_200_000, 2_900_000, 1280, 720, 29.97, "avc1.64001f,mp4a.40.2"
    ),
    VariantEntry("360p/index.m3u8", 950_000, 850_000, 640, 360, 29.97, "avc1.64001e,mp4a.40.2"),
]
AUDIO = AudioEntry("audio/index.m3u8", "aac", 2)


def test_master_lists_every_variant_with_its_attributes() -> None:
    # GIVEN three variants and an audio rendition
    # WHEN the master playlist is rendered and parsed back
    parsed = m3u8.loads(master_playlist(VARIANTS, AUDIO))

    # THEN it is a multivariant playlist with each variant and every attribute a player
    # needs to choose between them
    assert parsed.is_variant
    assert [p.uri for p in parsed.playlists] == [v.uri for v in VARIANTS]
    for playlist, variant in zip(parsed.playlists, VARIANTS, strict=True):
        info = playlist.stream_info
        assert info.bandwidth == variant.bandwidth
        assert info.average_bandwidth == variant.average_bandwidth
        assert info.resolution == (variant.width, variant.height)
        assert info.codecs == variant.codecs
        assert info.frame_rate == pytest.approx(variant.frame_rate, abs=1e-3)
        assert info.audio == AUDIO.group


def test_master_declares_the_audio_group_once() -> None:
    # GIVEN an audio rendition
    # WHEN the master playlist is rendered and parsed back
    parsed = m3u8.loads(master_playlist(VARIANTS, AUDIO))

    # THEN one default AUDIO rendition names the group every variant refers to
    (media,) = parsed.media
    assert media.type == "AUDIO"
    assert media.group_id == AUDIO.group
    assert media.uri == AUDIO.uri
    assert media.channels == "2"
    assert media.default == "YES"


def test_master_names_the_audios_language_only_where_the_source_says_it() -> None:
    # GIVEN audio the source tags English, and audio it does not tag
    english = AudioEntry("audio/index.m3u8", "aac", 2, name="English", language="en")
    # THEN a player can match the first to its viewer's language, and the second claims none
    (tagged,) = m3u8.loads(master_playlist(VARIANTS, english)).media
    assert (tagged.language, tagged.name, tagged.autoselect) == ("en", "English", "YES")
    (untagged,) = m3u8.loads(master_playlist(VARIANTS, AUDIO)).media
    assert untagged.language is None


@pytest.mark.parametrize(
    ("tag", "language"),
    [("eng", "en"), ("ENG", "en"), ("ger", "de"), ("deu", "de"), ("pt-BR", "pt-BR"),
     ("por-br", "pt-BR"), ("fil", "fil"), ("und", None), ("", None), (None, None),
     ('en"', None), ("e", None), ("cze", "cs"), ("ces", "cs"), ("gre", "el"),
     ("heb", "he"), ("ukr", "uk"), ("wel", "cy"), ("nor", "no"), ("tib", "bo")],
)  # fmt: skip
def test_a_containers_language_tag_becomes_the_bcp_47_tag_players_match(
    tag: str | None, language: str | None
) -> None:
    assert stream_language(tag) == language


def test_master_declares_captions_the_video_carries_and_none_it_does_not() -> None:
    # GIVEN rungs whose video carries CEA-608 captions, and rungs without
    # WHEN each master playlist is rendered and parsed back
    captioned = m3u8.loads(master_playlist(VARIANTS, AUDIO, captions=True))
    plain = master_playlist(VARIANTS, AUDIO)
    # THEN the first declares one CLOSED-CAPTIONS rendition, CC1, not shown by default,
    # and every variant names its group (Safari offers in-band captions only then)
    (cc,) = [m for m in captioned.media if m.type == "CLOSED-CAPTIONS"]
    assert (cc.instream_id, cc.default, cc.autoselect, cc.uri) == ("CC1", None, "YES", None)
    assert all(p.stream_info.closed_captions == f'"{cc.group_id}"' for p in captioned.playlists)
    # AND the second claims none
    assert "CLOSED-CAPTIONS" not in plain


def test_master_without_audio_has_no_audio_group() -> None:
    # GIVEN a silent source
    # WHEN the master playlist is rendered and parsed back
    text = master_playlist(VARIANTS, None)
    parsed = m3u8.loads(text)

    # THEN no variant points at an audio group and none is declared
    assert len(parsed.playlists) == len(VARIANTS)
    assert all(p.stream_info.audio is None for p in parsed.playlists)
    assert len(parsed.media) == 0
    assert "AUDIO" not in text


def test_playlists_played_together_share_one_target_duration() -> None:
    # GIVEN 4 s video segments and AAC-grid audio segments a few ms longer, and a last
    # video segment of 4.6 s
    video = segments_of([4.0, 4.0, 4.6])
    audio = segments_of([4.010667, 4.010667, 4.5])
    # WHEN their common target is asked for / THEN it is the longest, rounded as RFC 8216
    # compares segments with it, and every playlist given it says so
    target = common_target([video, audio])
    assert target == 5
    for segments in (video, audio):
        assert m3u8.loads(media_playlist(segments, fixed_target=target)).target_duration == 5
    assert common_target([segments_of([4.0]), segments_of([4.010667])]) == 4
    assert common_target([]) == 1


def test_every_iso_639_2_code_of_a_two_letter_language_becomes_its_two_letter_tag() -> None:
    # GIVEN the three-letter codes containers tag audio with, of languages BCP 47 names
    # with two letters (IANA registers no three-letter subtag for them)
    # THEN each becomes its two-letter tag, which is what players match a viewer's with
    assert len(set(_ISO_639_2.values())) == 184  # every ISO 639-1 language
    assert all(len(two) == 2 and stream_language(three) == two for three, two in _ISO_639_2.items())
