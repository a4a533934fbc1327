"""Sidecar subtitles through real ffmpeg into WebVTT; the playlists through the strict
HLS parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.asset import strict_parse
from tests.unit.test_subtitles import CLEAN_VTT, cues_of
from workflow.errors import InputError
from workflow.formats.hls import subtitle_media_lines, subtitle_playlist
from workflow.local.binaries import ffmpeg_binary
from workflow.media.subtitles import (
    MAX_CUE_CHARACTERS,
    MAX_SUBTITLE_BYTES,
    SubtitleError,
    SubtitleTrack,
    to_webvtt,
    with_timestamp_map,
)

SRT_WITH_BOM_AND_CRLF = (
    "\ufeff1\r\n"
    "00:00:01,000 --> 00:00:02,500\r\n"
    "<i>Hello</i> world\r\n"
    "\r\n"
    "2\r\n"
    "00:00:03,250 --> 00:00:04,000\r\n"
    "Two lines,\r\n"
    "<i>one</i> in italics\r\n"
    "\r\n"
    "3\r\n"
    "01:02:03,004 --> 01:02:05,000\r\n"
    "After an hour\r\n"
).encode()


def convert(data: bytes, fmt: str) -> str:
    return to_webvtt(data, fmt, binary=ffmpeg_binary(), timeout=30)


def test_srt_with_bom_crlf_and_italics_becomes_webvtt() -> None:
    # GIVEN a SubRip file with a byte-order mark, CRLF line endings and <i> tags
    # WHEN ffmpeg converts it
    vtt = convert(SRT_WITH_BOM_AND_CRLF, "srt")

    # THEN it is WebVTT with the same times and text, LF only, italics kept
    assert vtt.startswith("WEBVTT\n\n")
    assert "\r" not in vtt and "\ufeff" not in vtt
    assert cues_of(vtt) == [
        ("00:01.000", "00:02.500", "<i>Hello</i> world"),
        ("00:03.250", "00:04.000", "Two lines,\n<i>one</i> in italics"),
        ("01:02:03.004", "01:02:05.000", "After an hour"),
    ]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_with_its_byte_order_mark_is_read(encoding: str) -> None:
    # GIVEN SubRip saved as "Unicode" by a Windows tool: UTF-16 with a byte-order mark
    srt = SRT_WITH_BOM_AND_CRLF.decode("utf-8").replace("world", "wörld").encode(encoding)

    # WHEN it is converted
    vtt = convert(srt, "srt")

    # THEN it is the same WebVTT as the UTF-8 file makes
    assert vtt == convert(SRT_WITH_BOM_AND_CRLF.replace(b"world", "wörld".encode()), "srt")


def test_loosely_written_srt_times_are_read_as_written() -> None:
    # GIVEN SubRip times with one-digit hours, a dot before the milliseconds and no
    # spaces around the arrow, all of which ffmpeg reads as the writer meant
    srt = b"1\n0:00:01.250-->0:00:01,500\nquarter past\n"

    # WHEN it is converted
    vtt = convert(srt, "srt")

    # THEN the cue is published at the times the check read
    assert cues_of(vtt) == [("00:01.250", "00:01.500", "quarter past")]


def test_clean_webvtt_passes_through_unchanged() -> None:
    # GIVEN a WebVTT file with an identifier, cue settings, voice and class spans
    # WHEN it is normalised / THEN nothing changes
    assert convert(CLEAN_VTT.encode(), "vtt") == CLEAN_VTT


def test_only_whole_cue_settings_are_kept() -> None:
    # GIVEN a cue whose timing line holds a setting and a word that ends in one
    source = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000 align:start xline:0\nhi\n"
    # WHEN it is normalised, THEN only the setting is kept: a browser ignores the word,
    # and "xline:0" read as "line:0" would move the cue to the top
    assert "00:01.000 --> 00:02.000 align:start\nhi" in convert(source, "vtt")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("WEBVTT\n00:00:01.000 --> 00:00:02.000\nfirst\n", id="only-cue"),
        pytest.param(
            "WEBVTT\nKind: captions\n00:00:01.000 --> 00:00:02.000\nfirst\n\n"
            "00:00:03.000 --> 00:00:04.000\nsecond\n",
            id="after-a-header-line",
        ),
    ],
)
def test_a_cue_right_after_the_webvtt_header_is_kept(source: str) -> None:
    # GIVEN WebVTT whose first cue follows its header with no empty line between: a
    # browser's parser ends the header at the cue's timing line
    # WHEN it is normalised
    vtt = convert(source.encode(), "vtt")

    # THEN that cue is published with the others
    assert cues_of(vtt)[0] == ("00:01.000", "00:02.000", "first")
    assert "Kind" not in vtt


def test_webvtt_header_extras_are_dropped_and_cues_kept() -> None:
    # GIVEN WebVTT with a titled header, an old timestamp map, STYLE and NOTE blocks
    source = (
        "WEBVTT - title\r\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00:00.000\r\n\r\n"
        "STYLE\r\n::cue { color: red }\r\n\r\nNOTE hi\r\n\r\n"
        "00:00:01.000 --> 00:00:02.000 region:r1 size:80%\r\nkept\r\n"
    )
    # WHEN it is normalised
    vtt = convert(source.encode(), "vtt")

    # THEN only the cue remains, with the settings that need no region
    assert vtt == "WEBVTT\n\n00:01.000 --> 00:02.000 size:80%\nkept\n"


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_text_that_would_break_a_cue_is_escaped(fmt: str) -> None:
    # GIVEN cue text with a bare "<", "&" and an arrow line
    times = "00:00:01,000 --> 00:00:02,000" if fmt == "srt" else "00:00:01.000 --> 00:00:02.000"
    header = "" if fmt == "srt" else "WEBVTT\n\n"
    source = f"{header}{times}\n1 < 2 & 3 > 0 <i>ok</i>\n-->\n"

    # WHEN it is normalised
    vtt = convert(source.encode(), fmt)

    # THEN the player shows that text instead of reading a tag or a new cue
    assert cues_of(vtt) == [("00:01.000", "00:02.000", "1 &lt; 2 &amp; 3 > 0 <i>ok</i>\n--&gt;")]


def test_a_webvtt_cue_keeps_its_text_after_a_line_of_spaces() -> None:
    # GIVEN a WebVTT cue whose payload has a line of spaces between two lines of text:
    # only an empty line ends a cue, so a browser shows both
    source = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfirst\n   \nsecond\n"

    # WHEN it is normalised
    vtt = convert(source, "vtt")

    # THEN both lines are published, without the line that shows nothing
    assert cues_of(vtt) == [("00:01.000", "00:02.000", "first\nsecond")]


def test_a_timing_line_inside_a_webvtt_cue_starts_the_next_cue() -> None:
    # GIVEN WebVTT without the empty line before two of its cues, one of them earlier
    # than the cue it follows: a browser's parser starts a new cue at each timing line
    source = (
        b"WEBVTT\n\n00:05.000 --> 00:06.000\nfive\n00:07.000 --> 00:08.000\nseven"
        b"\n\n00:03.000 --> 00:04.000\nthree\n00:01.000 --> 00:02.000 align:start"
        b"\none\n"
    )

    # WHEN it is normalised
    vtt = convert(source, "vtt")

    # THEN every cue is published as its own, at its own time, in order of start
    assert cues_of(vtt) == [
        ("00:01.000", "00:02.000", "one"),
        ("00:03.000", "00:04.000", "three"),
        ("00:05.000", "00:06.000", "five"),
        ("00:07.000", "00:08.000", "seven"),
    ]
    assert "00:01.000 --> 00:02.000 align:start\n" in vtt


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_a_cue_that_ends_as_it_starts_is_left_out(fmt: str) -> None:
    # GIVEN a cue that ends the instant it starts (WebVTT asks an end after the start)
    header, comma = ("", ",") if fmt == "srt" else ("WEBVTT\n\n", ".")
    source = (
        f"{header}00:00:01{comma}000 --> 00:00:01{comma}000\nnever shown\n\n"
        f"00:00:02{comma}000 --> 00:00:03{comma}000\nshown\n"
    )

    # WHEN it is normalised
    vtt = convert(source.encode(), fmt)

    # THEN only the cue with a length is published
    assert cues_of(vtt) == [("00:02.000", "00:03.000", "shown")]


def test_a_repeated_cue_identifier_is_left_out() -> None:
    # GIVEN WebVTT whose cues share an identifier (WebVTT asks each to be unique)
    source = (
        b"WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\none\n\n"
        b"1\n00:00:03.000 --> 00:00:04.000\ntwo\n\n2\n00:00:05.000 --> 00:00:06.000\nthree\n"
    )

    # WHEN it is normalised
    vtt = convert(source, "vtt")

    # THEN the first cue keeps it and the other loses it, its text and times kept
    assert vtt == (
        "WEBVTT\n\n1\n00:01.000 --> 00:02.000\none\n\n00:03.000 --> 00:04.000\ntwo\n\n"
        "2\n00:05.000 --> 00:06.000\nthree\n"
    )


def test_a_srt_cue_of_nearly_the_longest_text_is_converted() -> None:
    # GIVEN a SubRip cue just under the longest text a cue may hold
    words = "word " * ((MAX_CUE_CHARACTERS - 10) // 5)

    # WHEN it is converted
    vtt = convert(f"1\n00:00:01,000 --> 00:00:02,000\n{words}\n".encode(), "srt")

    # THEN it is published whole (ffmpeg breaks the line every 4 kB)
    [(start, end, text)] = cues_of(vtt)
    assert (start, end, " ".join(text.split())) == ("00:01.000", "00:02.000", words.strip())


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        pytest.param(b"", "srt", "is empty", id="empty"),
        pytest.param(b" \r\n\r\n", "vtt", "is empty", id="blank"),
        pytest.param(bytes(range(256)) * 4, "srt", "not UTF-8", id="binary-garbage"),
        pytest.param(b"\x00\x01\x02 PK zip", "vtt", "binary data", id="control-bytes"),
        pytest.param(
            "1\n00:00:01,000 --> 00:00:02,000\nCafé\n".encode("latin-1"),
            "srt",
            r"not UTF-8 text \(byte 0xe9 at offset 35\): save it as UTF-8",
            id="latin-1",
        ),
        pytest.param(b"x" * (MAX_SUBTITLE_BYTES + 1), "srt", "2.0 MB; at most 2 MB", id="huge"),
        # ffmpeg's SubRip decoder takes minutes over one cue of 2 MB: past its time limit,
        # a transient error the workflow retries, where the upload is what is wrong.
        pytest.param(
            b"1\n00:00:01,000 --> 00:00:02,000\n" + b"word " * 380_000 + b"\n",
            "srt",
            "line 2: the cue's text runs past 10000 characters",
            id="srt-cue-of-2-mb",
        ),
        pytest.param(
            b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n" + b"word\n\n" * 2_000,
            "srt",
            "line 2: the cue's text runs past 10000 characters",
            id="srt-cue-continued-by-text-without-times",
        ),
        pytest.param(b"just some words\nno times\n", "srt", "no cues", id="no-cue-srt"),
        pytest.param(b"WEBVTT\n\nNOTE only a note\n", "vtt", "no cues", id="no-cue-vtt"),
        pytest.param(
            b"1\n00:00:01,000 --> 00:00:02,000\nsrt named .vtt\n", "vtt", "no cues", id="srt-as-vtt"
        ),
        pytest.param(
            b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n",
            "srt",
            "rename it to .vtt",
            id="vtt-as-srt",
        ),
        pytest.param(b"00:00:01,000 --> 00:00:02,000\n\n", "srt", "no cues", id="only-empty-cue"),
        pytest.param(
            b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:05,000 --> 00:00:02,000\nback\n",
            "srt",
            "line 6: the cue ends at 00:00:02,000, before it starts at 00:00:05,000",
            id="srt-cue-ends-before-it-starts",
        ),
        pytest.param(
            b"WEBVTT\n\n00:00:01.000 --> 00:00:75.000\nx\n",
            "vtt",
            r"line 3: 00:00:75.000 is not a time \(minutes and seconds run from 00 to 59\)",
            id="vtt-seconds-out-of-range",
        ),
        pytest.param(
            b"WEBVTT\n00:00:05.000 --> 00:00:02.000\nx\n",
            "vtt",
            "line 2: the cue ends at 00:00:02.000, before it starts at 00:00:05.000",
            id="vtt-cue-right-after-the-header-ends-before-it-starts",
        ),
        pytest.param(
            b"WEBVTT\n\n99:00.000 --> 99:01.000\nx\n",
            "vtt",
            "line 3: 99:00.000 is not a time",
            id="vtt-minutes-out-of-range",
        ),
        # ffmpeg reads a fraction as whole milliseconds: "01,25" is 1.025 s and "01,5"
        # 1.005 s, so this cue would pass as 1.25-1.5 s and be published as 1.025-1.005.
        pytest.param(
            b"1\n00:00:01,25 --> 00:00:01,5\nx\n",
            "srt",
            "line 2: 00:00:01,25 needs exactly three digits of milliseconds after the ','",
            id="srt-two-digit-fraction",
        ),
        pytest.param(
            b"1\n00:00:01,000 --> 00:00:01,1234\nx\n",
            "srt",
            "line 2: 00:00:01,1234 needs exactly three digits of milliseconds",
            id="srt-four-digit-fraction",
        ),
        pytest.param(
            b"WEBVTT\n\n00:01.5 --> 00:02.000\nx\n",
            "vtt",
            "line 3: 00:01.5 needs exactly three digits of milliseconds after the '.'",
            id="vtt-one-digit-fraction",
        ),
        # ffmpeg drops the minus of "-00": the cue would start at 1 s, not before 0.
        pytest.param(
            b"1\n-00:00:01,000 --> 00:00:02,000\nx\n",
            "srt",
            "line 2: -00:00:01,000 has a sign; cue times are never negative",
            id="srt-negative-time",
        ),
        pytest.param(
            b"1\n" + b"0" * 5000 + b"1:00,000 --> 00:00:02,000\nx\n",
            "srt",
            r"line 2: 0{40}\.\.\. is not a time \(hours:minutes:seconds,milliseconds",
            id="srt-5000-digit-minutes",
        ),
        # ffmpeg skips a space inside a field: this cue ends before it starts, and the
        # next is read as 1.005 s
        pytest.param(
            b"1\n00:00:05,000 --> 00:00: 01,000\nx\n",
            "srt",
            "line 2: '00:00: 01,000' has a space inside it",
            id="srt-space-in-a-field",
        ),
        pytest.param(
            b"1\n00:00:01, 5 --> 00:00:02,000\nx\n",
            "srt",
            "line 2: '00:00:01, 5' has a space inside it",
            id="srt-space-before-the-fraction",
        ),
    ],
)
def test_unusable_subtitles_raise_a_named_input_error(data: bytes, fmt: str, message: str) -> None:
    # GIVEN an upload that is no usable subtitle file
    # WHEN it is converted
    with pytest.raises(SubtitleError, match=message) as raised:
        convert(data, fmt)

    # THEN the error is an input error with a single line a user can act on
    assert isinstance(raised.value, InputError)
    assert raised.value.name == "SubtitleError"
    assert "\n" not in str(raised.value)


def test_strict_hls_parser_accepts_a_master_with_subtitles(tmp_path: Path) -> None:
    # GIVEN a master with a subtitles group and each language's playlist and WebVTT file
    tracks = [SubtitleTrack("en"), SubtitleTrack("zh-Hant")]
    master = [
        "#EXTM3U",
        "#EXT-X-VERSION:4",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        *subtitle_media_lines(tracks),
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.64001e",'
        'SUBTITLES="subs"',
        "360p/index.m3u8",
    ]
    (tmp_path / "master.m3u8").write_text("\n".join(master) + "\n", encoding="utf-8")
    (tmp_path / "subtitles").mkdir()
    for track in tracks:
        name = Path(track.webvtt_uri).name
        (tmp_path / track.playlist_uri).write_text(subtitle_playlist(name, 12.5))
        (tmp_path / track.webvtt_uri).write_text(with_timestamp_map(CLEAN_VTT, 900_000))

    # WHEN the strict npm hls-parser reads every playlist
    result = strict_parse(tmp_path)

    # THEN all parse: a master with its variant and two one-segment media playlists
    assert result.returncode == 0, result.stderr
    assert re.findall(r"\t(master|media)\t(\d+)", result.stdout) == [
        ("master", "1"),
        ("media", "1"),
        ("media", "1"),
    ]
