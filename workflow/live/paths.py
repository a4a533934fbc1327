"""Where a live stream's files are: its ingest keys, its output keys, its segment names."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from workflow.names import segment_name

LIVE_PREFIX = "live/"
END_MARKER = "END"
STREAM_CONFIG = "stream.json"
INIT_SEGMENT = "init.mp4"
# Short enough that an execution name (stream, sequence, ETag) fits in 80 characters.
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,48}")
_SEGMENT = re.compile(r"([0-9]{1,9})\.(ts|m4s)")
MAX_SEQUENCE = 999_999_999
# The most a venue's small JSON uploads (stream.json, END, a clip request) are read of:
# a few hundred bytes are all they need, and one of gigabytes would end the reading
# function out of memory, on every retry.
MAX_RECORD_BYTES = 64 * 1024
# An encrypted stream's key and playback tokens are named ``live.<stream>``: no job id
# or stream id has a dot, so a stream's asset never meets a VOD job's.
LIVE_ASSET_PREFIX = "live."


@dataclass(frozen=True)
class StreamPaths:
    """Keys of one live stream in the output bucket."""

    stream: str

    @property
    def prefix(self) -> str:
        return f"{LIVE_PREFIX}{self.stream}/"

    @property
    def asset(self) -> str:
        """What the stream's content key and playback tokens are named by."""
        return f"{LIVE_ASSET_PREFIX}{self.stream}"

    def segment_key(self, rung: str, sequence: int) -> str:
        return f"{self.prefix}{rung}/{segment_name(sequence)}"

    def live_playlist_key(self, rung: str) -> str:
        return f"{self.prefix}{rung}/live.m3u8"

    @property
    def live_master_key(self) -> str:
        return f"{self.prefix}live.m3u8"

    @property
    def master_key(self) -> str:
        return f"{self.prefix}master.m3u8"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}manifest.json"

    def failure_key(self, sequence: int) -> str:
        return f"failures/{self.prefix}{sequence:09d}.json"

    @property
    def config_failure_key(self) -> str:
        """Where a ``stream.json`` that came too late to apply is recorded."""
        return f"failures/{self.prefix}{STREAM_CONFIG}"


def is_stream_id(name: str) -> bool:
    """Whether ``name`` is a stream's name: 1 to 48 letters, digits, ``_`` or ``-``."""
    return _STREAM_ID.fullmatch(name) is not None


def segment_sequence(name: str) -> int | None:
    """The sequence number a segment's file name carries (``42.ts``), or None."""
    found = _SEGMENT.fullmatch(name)
    return int(found.group(1)) if found else None


def parse_live_key(key: str) -> tuple[str, str] | None:
    """``(stream, name)`` for ``live/<stream>/<name>``, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != LIVE_PREFIX or not is_stream_id(parts[1]):
        return None
    return parts[1], parts[2]


CLIP_PREFIX = "clips/"
# Short enough that an execution name (stream, clip, ETag) fits in 80 characters.
_CLIP_NAME = r"[A-Za-z0-9_-]{1,22}"
_CLIP_REQUEST = re.compile(rf"({_CLIP_NAME})\.json")


@dataclass(frozen=True)
class ClipPaths:
    """Keys of one clip: its request in the ingest bucket, its asset in the output."""

    stream: str
    name: str

    @property
    def request_key(self) -> str:
        return f"{CLIP_PREFIX}{self.stream}/{self.name}.json"

    @property
    def prefix(self) -> str:
        return f"{CLIP_PREFIX}{self.stream}/{self.name}/"

    @property
    def failure_key(self) -> str:
        return f"failures/{CLIP_PREFIX}{self.stream}/{self.name}.json"


def is_clip_name(name: str) -> bool:
    """Whether ``name`` is a clip's name: 1 to 22 letters, digits, ``_`` or ``-``."""
    return re.fullmatch(_CLIP_NAME, name) is not None


def parse_clip_key(key: str) -> ClipPaths | None:
    """The clip ``clips/<stream>/<name>.json`` asks for, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != CLIP_PREFIX or not is_stream_id(parts[1]):
        return None
    found = _CLIP_REQUEST.fullmatch(parts[2])
    return ClipPaths(parts[1], found.group(1)) if found else None


def clip_execution_name(clip: ClipPaths, etag: str, version_id: str | None = None) -> str:
    """One name per version of a clip request: a duplicate event starts nothing.

    Where the ingest bucket keeps versions, the version id is part of it: identical
    bodies have the same ETag, so a clip asked for again with the span it had before
    (after another) would otherwise start nothing and leave the other span published.

    Stream ids and clip names both may hold ``-``, so ``game-42``'s ``opener`` and
    ``game``'s ``42-opener`` read alike: the name ends in a hash of all three parts, not
    in the ETag alone (identical request bodies have the same ETag)."""
    # (an S3 event's eTag comes bare, a PUT's answer quoted: the same name for both)
    bare = etag.strip(chr(34))
    version = f"/{version_id}" if version_id not in (None, "", "null") else ""
    digest = hashlib.sha256(f"{clip.stream}/{clip.name}/{bare}{version}".encode()).hexdigest()
    return f"{clip.stream}-{clip.name}-{digest[:8]}"


def execution_name(stream: str, sequence: int, etag: str) -> str:
    """One name per segment version: the console finds a segment's execution by it."""
    return f"{stream}-{sequence:09d}-{etag.strip(chr(34))[:8] or 'none'}"
