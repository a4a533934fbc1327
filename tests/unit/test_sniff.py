"""Sniffing an upload's first bytes: known containers pass, references and text do not."""

from __future__ import annotations

import pytest

from workflow.errors import InputError, NotAVideoError, UnsafeInputError
from workflow.media.sniff import DEMUXER_FOR_FAMILY, sniff

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
MATROSKA = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 64
TS_PACKET = b"\x47\x40\x00\x10" + b"\xff" * 184


@pytest.mark.parametrize(
    ("head", "family"),
    [
        pytest.param(MP4, "mp4", id="mp4-ftyp"),
        pytest.param(b"\x00\x00\x00\x08moov" + b"\x00" * 32, "mp4", id="mp4-moov-first"),
        pytest.param(MATROSKA, "matroska", id="matroska-ebml"),
        pytest.param(TS_PACKET * 3, "mpegts", id="mpegts-sync-at-0-and-188"),
        pytest.param((b"\x00\x01\x02\x03" + TS_PACKET) * 3, "mpegts", id="m2ts-192-byte"),
        pytest.param((TS_PACKET + b"\x00" * 16) * 3, "mpegts", id="dvb-ts-204-byte"),
        pytest.param(b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x00" * 32, "avi", id="avi"),
        pytest.param(b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00" * 32, "flv", id="flv"),
        pytest.param(b"\x00\x00\x01\xba\x44" + b"\x00" * 32, "mpeg", id="mpeg-ps"),
    ],
)
def test_known_containers_are_recognised(head: bytes, family: str) -> None:
    # GIVEN the first bytes of a file in a known container
    # WHEN it is sniffed
    result = sniff(head)

    # THEN the family is named and maps to exactly one allowed demuxer
    assert result == family
    assert result in DEMUXER_FOR_FAMILY


def test_empty_file_is_not_a_video() -> None:
    # GIVEN a 0-byte upload
    # WHEN / THEN it is refused as not a video, with a message saying why
    with pytest.raises(NotAVideoError, match="empty"):
        sniff(b"")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nseg0.ts\n", id="hls-media"),
        pytest.param(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://169.254.169.254/x.m3u8\n",
            id="hls-master-to-metadata-service",
        ),
        pytest.param("\ufeff#extm3u\n#extinf:1,\n/etc/passwd\n", id="hls-bom-lowercase"),
        pytest.param("ffconcat version 1.0\nfile 'a.mp4'\nfile 'b.mp4'\n", id="ffconcat"),
        pytest.param(
            '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
            'type="static"><Period/></MPD>\n',
            id="dash-mpd",
        ),
        pytest.param("see file:///etc/passwd for details\n", id="file-url"),
        pytest.param("[playlist]\nFile1=http://example.com/a\n", id="pls"),
        pytest.param("<smil><body><video src='a.mp4'/></body></smil>", id="smil"),
    ],
)
def test_playlists_and_references_are_unsafe(text: str) -> None:
    # GIVEN a text file that would make a demuxer open other files or URLs
    # WHEN / THEN it is refused as unsafe, never handed to ffmpeg
    with pytest.raises(UnsafeInputError):
        sniff(text.encode("utf-8"))


def test_a_reference_after_binary_garbage_is_still_unsafe() -> None:
    # GIVEN an HLS tag hidden after non-container binary bytes
    head = b"\x01\x02\x03\x04\x05\x06\x07\x08" + b"#EXTM3U\nhttp://x/y.ts\n"

    # WHEN / THEN it is refused as unsafe
    with pytest.raises(UnsafeInputError):
        sniff(head)


def test_media_that_holds_a_url_is_no_video_not_a_playlist() -> None:
    # GIVEN a raw H.264 stream: binary, with x264's settings string naming its web site
    sei = b"x264 - core 164 - H.264/MPEG-4 AVC codec - Copyleft 2003-2024 - http://www.videolan.org/x264.html"
    head = b"\x00\x00\x00\x01\x67\x64\x00\x1f\xac\xd9\x40\x50\x05\xbb\x01\x10\x00\x00\x03\x00" * 8
    # THEN it is named as no video vidflow reads, not as a list of other files
    with pytest.raises(NotAVideoError, match="not a video container"):
        sniff(head + b"\x00\x00\x01\x06\x05\xff" + sei + b"\x00\x80" * 64)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"hello, this is just some text\n", id="plain-text"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", id="pdf"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, id="png"),
        pytest.param(b"\x47" + b"\x00" * 100, id="one-ts-sync-byte-only"),
        pytest.param(b"\x47" + b"\x00" * 187, id="ts-sync-at-0-and-too-short"),
        pytest.param(b"\x47" + b"\x00" * 399, id="ts-sync-at-0-but-not-188"),
    ],
)
def test_other_bytes_are_not_a_video(head: bytes) -> None:
    # GIVEN bytes of no known video container and no references
    # WHEN / THEN they are refused as not a video
    with pytest.raises(NotAVideoError):
        sniff(head)


def test_refusals_are_input_errors() -> None:
    # GIVEN the two refusals sniff can raise
    # WHEN / THEN both are permanent input errors named for what the user sees
    assert issubclass(NotAVideoError, InputError)
    assert issubclass(UnsafeInputError, InputError)
    assert not NotAVideoError.transient and not UnsafeInputError.transient
