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
    b"concat:",
    b"subfile,",
)
# Bare references, which binary media holds too (x264's settings string names its web
# site): they make a file a list of other files only where the file is text.
_REFERENCES_IN_TEXT = (b"file:", b"http://", b"https://")

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
    ("mpegts", lambda h: _transport_stream(h)),
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
    window = head[:4096].lower()
    markers = _INDIRECTION_MARKERS + (_REFERENCES_IN_TEXT if _mostly_text(window) else ())
    if any(marker.lower() in window for marker in markers):
        raise UnsafeInputError(
            "the file is a playlist or list of other files, not a video; "
            "vidflow never follows references inside an upload"
        )
    if _looks_like_text(head[:4096]):
        raise NotAVideoError("the file is text, not a video")
    raise NotAVideoError("the file is not a video container vidflow can read")


def protocols_for(source: str) -> str:
    """The only protocols ffmpeg may use to read ``source``: its own scheme's."""
    if source.startswith("https://"):
        return "https,tls,tcp"
    if source.startswith("http://"):
        return "http,tcp"
    return "file"


# MPEG-TS packet sizes: plain (188), with a 4-byte timecode before each packet (192:
# camcorders' .MTS, Blu-ray's .m2ts), with Reed-Solomon parity after it (204: DVB).
_TS_PACKETS = ((188, 0), (192, 4), (204, 0))


def _transport_stream(head: bytes) -> bool:
    """Three packets in a row, each starting with the sync byte, at one of the sizes."""
    return any(
        len(head) > offset + 2 * size and all(head[offset + n * size] == 0x47 for n in range(3))
        for size, offset in _TS_PACKETS
    )


def _mostly_text(data: bytes) -> bool:
    """Nearly all printable bytes or whitespace (any encoding), as text is and media not."""
    controls = sum(1 for byte in data if (byte < 32 and byte not in b"\r\n\t") or byte == 127)
    return controls <= len(data) // 50


def _looks_like_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


HEAD_BYTES = 64 * 1024  # enough of a file's start to sniff its container
