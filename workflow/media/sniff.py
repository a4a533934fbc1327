"""How an untrusted upload may be read: which demuxer, which protocol, or not at all.

The demuxer is chosen from the file's own first bytes, never by ffmpeg's guess, and is
one that reads a single self-contained file; the protocol is the source's own scheme.
Playlists, concat lists and other indirection are refused before ffmpeg sees them.
"""

from __future__ import annotations

from workflow.errors import NotAVideoError, UnsafeInputError

# Demuxers that read one self-contained file and never open another resource.
ALLOWED_DEMUXERS = ("mov", "matroska", "mpegts", "avi", "flv", "mpeg")

# Text that makes a demuxer follow references to other files or URLs.
_INDIRECTION_MARKERS = (
    b"#EXTM3U",
    b"#EXTINF",
    b"ffconcat",
    b"<MPD",
    b"<smil",
    b"[playlist]",
    b"file '",
    b"file:",
    b"http://",
    b"https://",
    b"concat:",
    b"subfile,",
)

# Sniffed family -> the one demuxer allowed to read it; ffmpeg's own guess is never used.
DEMUXER_FOR_FAMILY = {
    "mp4": "mov",
    "matroska": "matroska",
    "mpegts": "mpegts",
    "avi": "avi",
    "flv": "flv",
    "mpeg": "mpeg",
}

_SIGNATURES = (
    ("mp4", lambda h: h[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")),
    ("matroska", lambda h: h[:4] == b"\x1a\x45\xdf\xa3"),
    ("mpegts", lambda h: len(h) > 188 and h[0] == 0x47 and h[188] == 0x47),
    ("avi", lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI "),
    ("flv", lambda h: h[:3] == b"FLV"),
    ("mpeg", lambda h: h[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")),
)


def sniff(head: bytes) -> str:
    """Name the container family of a file from its first bytes, or refuse it.

    Raises ``UnsafeInputError`` for anything that would reference another resource
    and ``NotAVideoError`` for bytes that are no known video container.
    """
    if not head:
        raise NotAVideoError("the file is empty (0 bytes)")
    for name, matches in _SIGNATURES:
        if matches(head):
            return name
    window = head[:4096]
    if any(marker.lower() in window.lower() for marker in _INDIRECTION_MARKERS):
        raise UnsafeInputError(
            "the file is a playlist or list of other files, not a video; "
            "vidflow never follows references inside an upload"
        )
    if _looks_like_text(window):
        raise NotAVideoError("the file is text, not a video")
    raise NotAVideoError("the file is not a video container vidflow can read")


def protocols_for(source: str) -> str:
    """The only protocols ffmpeg may use to read ``source``: its own scheme's."""
    if source.startswith("https://"):
        return "https,tls,tcp"
    if source.startswith("http://"):
        return "http,tcp"
    return "file"


def _looks_like_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


HEAD_BYTES = 64 * 1024  # enough of a file's start to sniff its container
