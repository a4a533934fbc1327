"""Sidecar subtitles: found next to a video, normalised to WebVTT by ffmpeg, listed in HLS."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from workflow.formats.hls import subtitle_media_lines, subtitle_playlist
from workflow.media.subtitles import (
    MAX_SIDECARS,
    Sidecar,
    SubtitleError,
    SubtitleTrack,
    build_webvtt_command,
    canonical_language,
    find_sidecars,
    is_sidecar,
    shifted,
    with_timestamp_map,
)

CLEAN_VTT = (
    "WEBVTT\n"
    "\n"
    "intro\n"
    "00:01.000 --> 00:02.000 align:start line:10%\n"
    "<v Bob>Hi <b>there</b></v>\n"
    "\n"
    "01:00:03.000 --> 01:00:04.000\n"
    "Tom &amp; Jerry <c.loud>shout</c>\n"
)


def cues_of(vtt: str) -> list[tuple[str, str, str]]:
    """(start, end, text) of every cue, read back from WebVTT text."""
    found = []
    for block in vtt.split("\n\n")[1:]:
        lines = block.strip("\n").split("\n")
        at = next(i for i, line in enumerate(lines) if " --> " in line)
        start, _, rest = lines[at].partition(" --> ")
        found.append((start, rest.split(" ")[0], "\n".join(lines[at + 1 :])))
    return found


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("uploads/movie.en.vtt", True, id="vtt"),
        pytest.param("uploads/a/b/movie.pt-BR.SRT", True, id="srt-upper-case"),
        # no job reads a settings file (options are the upload's metadata): one is
        # a job of its own, which fails as NotAVideoError instead of being dropped unread
        pytest.param("uploads/movie.vidflow.json", False, id="no-settings-file"),
        pytest.param("uploads/movie.mp4", False, id="video"),
        pytest.param("uploads/movie.json", False, id="other-json"),
        pytest.param("uploads/movie.vtt.mp4", False, id="video-named-like-subs"),
    ],
)
def test_sidecar_uploads_are_told_from_videos(key: str, expected: bool) -> None:
    # GIVEN an uploaded key / WHEN it is classified / THEN only sidecars are sidecars
    assert is_sidecar(key) is expected


@pytest.mark.parametrize(
    ("tag", "canonical"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("zh-hant", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("de-CH-1901", "de-CH-1901"),
        ("eng", "eng"),
        ("e", None),
        ("english", None),
        ("en_US", None),
        ('en"', None),
        ("en,fr", None),
        ("en.final", None),
        ("", None),
    ],
)
def test_language_tags_are_canonicalised_or_refused(tag: str, canonical: str | None) -> None:
    # GIVEN the language part of a sidecar's name / WHEN it is read
    # THEN a BCP 47-ish tag comes back in canonical case; anything else is refused
    assert canonical_language(tag) == canonical


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param(
            ["uploads/m.es.srt", "uploads/m.en.vtt", "uploads/m.mp4"],
            [("uploads/m.en.vtt", "en", "vtt"), ("uploads/m.es.srt", "es", "srt")],
            id="sorted-by-language",
        ),
        pytest.param(["uploads/m.srt"], [("uploads/m.srt", "und", "srt")], id="no-language-is-und"),
        pytest.param(
            ["uploads/m.en.srt", "uploads/m.en.vtt"],
            [("uploads/m.en.vtt", "en", "vtt")],
            id="vtt-preferred-over-srt",
        ),
        pytest.param(
            ["uploads/m.pt-br.srt", "uploads/m.pt-BR.vtt", "uploads/m.zh-hant.VTT"],
            [("uploads/m.pt-BR.vtt", "pt-BR", "vtt"), ("uploads/m.zh-hant.VTT", "zh-Hant", "vtt")],
            id="tags-compared-in-canonical-case",
        ),
        pytest.param(
            [
                "uploads/m.eng.srt",
                "uploads/m.ces.srt",
                "uploads/m.por-BR.srt",
                "uploads/m.fr.srt",
                "uploads/m.fre.vtt",
                "uploads/m.und.srt",
                "uploads/m.fil.srt",
            ],
            [
                ("uploads/m.ces.srt", "cs", "srt"),
                ("uploads/m.eng.srt", "en", "srt"),
                ("uploads/m.fil.srt", "fil", "srt"),
                ("uploads/m.fre.vtt", "fr", "vtt"),
                ("uploads/m.por-BR.srt", "pt-BR", "srt"),
                ("uploads/m.und.srt", "und", "srt"),
            ],
            id="iso-639-2-codes-as-their-bcp-47-tags",
        ),
        pytest.param(
            ["uploads/m.en.vtt", "uploads/other.fr.vtt", "uploads/mm.de.vtt", "uploads/m2.vtt"],
            [("uploads/m.en.vtt", "en", "vtt")],
            id="other-videos-sidecars-ignored",
        ),
        pytest.param(
            ["uploads/sub/m.en.vtt", "m.en.vtt", "uploads/m.final.vtt", "uploads/m.en.txt"],
            [],
            id="other-folders-bad-tags-other-extensions-ignored",
        ),
    ],
)
def test_sidecars_of_a_video_in_its_folder(
    keys: list[str], expected: list[tuple[str, str, str]]
) -> None:
    # GIVEN a video uploads/m.mp4 and the keys already uploaded
    # WHEN its sidecars are found
    found = find_sidecars("uploads/m.mp4", keys)

    # THEN there is one per language, sorted, each with its key and format
    assert found == [Sidecar(*fields) for fields in expected]


def test_sidecars_in_a_subfolder_belong_to_the_video_beside_them() -> None:
    # GIVEN a video in a subfolder with a dotted stem
    keys = ["uploads/show/ep.1.mp4", "uploads/show/ep.1.en.srt", "uploads/ep.1.fr.srt"]

    # WHEN / THEN only the sidecar in the same folder is its
    assert find_sidecars("uploads/show/ep.1.mp4", keys) == [
        Sidecar("uploads/show/ep.1.en.srt", "en", "srt")
    ]


def test_at_most_max_sidecars_languages() -> None:
    # GIVEN subtitle files in one language more than allowed
    languages = [f"l{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(MAX_SIDECARS + 1)]
    keys = [f"uploads/m.{language}.vtt" for language in languages]

    # WHEN / THEN exactly the limit is fine, one more is a named input error
    assert len(find_sidecars("uploads/m.mp4", keys[:MAX_SIDECARS])) == MAX_SIDECARS
    with pytest.raises(SubtitleError, match=f"21 languages; at most {MAX_SIDECARS}"):
        find_sidecars("uploads/m.mp4", keys)


@pytest.mark.parametrize(
    ("fmt", "demuxer", "codec"), [("srt", "srt", "webvtt"), ("vtt", "webvtt", "copy")]
)
def test_command_reads_with_exactly_one_demuxer_and_local_files_only(
    fmt: str, demuxer: str, codec: str
) -> None:
    # GIVEN a sidecar's format / WHEN its ffmpeg command is built
    args = build_webvtt_command(Path("/s/in"), fmt, Path("/s/out.vtt"), binary="ff")

    # THEN the input is read by its own demuxer with file-only protocols, written as WebVTT
    assert args == [
        "ff",
        *["-f", demuxer, "-format_whitelist", "srt,webvtt", "-protocol_whitelist", "file"],
        *["-i", "/s/in", "-f", "webvtt", "-c:s", codec, "/s/out.vtt"],
        *["-nostdin", "-hide_banner", "-loglevel", "error", "-y"],
    ]


def header_of(vtt: str) -> dict[str, str]:
    lines = vtt.split("\n\n")[0].split("\n")
    return dict(line.split("=", 1) for line in lines[1:])


@pytest.mark.parametrize("mpegts", [0, 900_000, 900_000 + 3003, 2**33 - 1])
def test_timestamp_map_is_added_to_the_header(mpegts: int) -> None:
    # GIVEN normalised WebVTT and the first video frame's 90 kHz PTS
    # WHEN the map is inserted
    mapped = with_timestamp_map(CLEAN_VTT, mpegts)

    # THEN the header maps cue time 0 to that PTS, and the cues are untouched
    assert mapped.split("\n")[0] == "WEBVTT"
    raw = header_of(mapped)["X-TIMESTAMP-MAP"]
    fields = dict(part.split(":", 1) for part in raw.split(","))
    assert fields == {"MPEGTS": str(mpegts), "LOCAL": "00:00:00.000"}
    assert cues_of(mapped) == cues_of(CLEAN_VTT)


def test_timestamp_map_replaces_an_earlier_one_and_needs_webvtt() -> None:
    # GIVEN WebVTT that already has a map / WHEN mapped twice
    twice = with_timestamp_map(with_timestamp_map(CLEAN_VTT, 1), 2)

    # THEN only the last map remains; text that is not WebVTT or a bad PTS is refused
    assert twice.count("X-TIMESTAMP-MAP") == 1
    assert header_of(twice)["X-TIMESTAMP-MAP"].startswith("MPEGTS:2,")
    assert (
        with_timestamp_map("WEBVTT", 5) == "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00:00.000\n"
    )
    with pytest.raises(ValueError):
        with_timestamp_map("1\n00:00:01,000 --> 00:00:02,000\nx\n", 0)
    with pytest.raises(ValueError):
        with_timestamp_map(CLEAN_VTT, -1)


def test_timestamp_map_past_the_wrap_is_written_as_the_muxer_writes_it() -> None:
    # GIVEN a first frame 5 ticks past MPEG-TS's 33-bit wrap (a source whose clock
    # begins just before it, shifted by the output offset)
    # WHEN mapped / THEN the map says 5, the PTS the video's TS segments carry
    assert header_of(with_timestamp_map(CLEAN_VTT, 2**33 + 5))["X-TIMESTAMP-MAP"] == (
        "MPEGTS:5,LOCAL:00:00:00.000"
    )


@pytest.mark.parametrize(
    ("duration", "target"), [(10.0, 10), (10.0004, 10), (10.2, 11), (0.4, 1), (3600.5, 3601)]
)
def test_subtitle_playlist_is_one_segment_covering_the_video(duration: float, target: int) -> None:
    # GIVEN the video's duration / WHEN the subtitle media playlist is rendered and parsed
    parsed = m3u8.loads(subtitle_playlist("en.vtt", duration))

    # THEN it is a finished VOD playlist whose one segment is the whole WebVTT file
    assert parsed.is_endlist and parsed.playlist_type == "vod"
    assert parsed.target_duration == target
    assert [(s.uri, s.duration) for s in parsed.segments] == [("en.vtt", pytest.approx(duration))]


@pytest.mark.parametrize(("uri", "duration"), [("a b.vtt", 1.0), ("#x", 1.0), ("a.vtt", 0.0)])
def test_subtitle_playlist_refuses_unsafe_uris_and_empty_durations(
    uri: str, duration: float
) -> None:
    with pytest.raises(ValueError):
        subtitle_playlist(uri, duration)


def test_media_lines_name_each_language_in_one_group() -> None:
    # GIVEN tracks in several languages, one undetermined
    tracks = [
        SubtitleTrack("en"),
        SubtitleTrack("pt-BR"),
        SubtitleTrack("zz"),
        SubtitleTrack("und"),
    ]

    # WHEN the master's lines are rendered and parsed
    master = m3u8.loads("#EXTM3U\n" + "\n".join(subtitle_media_lines(tracks)) + "\n")

    # THEN each is a non-default SUBTITLES rendition of "subs" pointing at its playlist
    assert [(m.type, m.group_id, m.default) for m in master.media] == [
        ("SUBTITLES", "subs", "NO")
    ] * 4
    assert [(m.language, m.name, m.uri, m.autoselect) for m in master.media] == [
        ("en", "English", "subtitles/en.m3u8", "YES"),
        ("pt-BR", "Português (Brasil)", "subtitles/pt-BR.m3u8", "YES"),
        ("zz", "zz", "subtitles/zz.m3u8", "YES"),
        ("und", "Subtitles", "subtitles/und.m3u8", "NO"),
    ]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: SubtitleTrack('en"'), id="quote-in-language"),
        pytest.param(lambda: SubtitleTrack("pt-br"), id="non-canonical-language"),
        pytest.param(lambda: SubtitleTrack("en", name='Say "hi"'), id="quote-in-name"),
        pytest.param(lambda: subtitle_media_lines([SubtitleTrack("en")] * 2), id="duplicate"),
        pytest.param(lambda: subtitle_media_lines([SubtitleTrack("en")], 'a"b'), id="bad-group"),
    ],
)
def test_nothing_unquotable_reaches_the_master(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_shifted_moves_cues_earlier_and_drops_what_falls_before_zero() -> None:
    vtt = (
        "WEBVTT\n\n"
        "gone\n00:00.200 --> 00:00.900\nbefore the first frame\n\n"
        "00:00.500 --> 00:02.000 align:start\nstraddles <00:00:00.800>a <00:00:01.500>b\n\n"
        "01:00:03.000 --> 01:00:04.000\nlate\n"
    )
    # WHEN the published timeline starts 1 s into the source's
    moved = shifted(vtt, 1.0)
    # THEN every cue is 1 s earlier; the one wholly before zero is gone, the one across it
    # starts at zero (its settings kept) and keeps only the inline time inside it
    assert moved == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000 align:start\nstraddles a <00:00:00.500>b\n\n"
        "01:00:02.000 --> 01:00:03.000\nlate\n"
    )
    assert shifted(vtt, 0.0) == vtt
    with pytest.raises(ValueError):
        shifted(vtt, -1.0)


def test_shifted_works_in_whole_milliseconds() -> None:
    # GIVEN a shift a hair under a second, and a cue that ends where it then falls
    vtt = (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nat the start\n\n"
        "00:00:01.000 --> 00:00:02.500\nnext <00:00:01.000>on\n"
    )
    # THEN the shift is 1.000 s: the first cue is gone, not left 0 s long, and the second's
    # inline time, now at its start, is removed
    assert shifted(vtt, 0.9996) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nnext on\n"
