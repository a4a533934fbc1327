"""Ranged S3 GETs that cost their range in the local stack.

moto 5.2.5 answers ``GET`` with ``Range: bytes=a-b`` by reading the whole object
(``FakeKey.value``) and then slicing it in ``S3Response._handle_range_header``. ffmpeg reads
its chunk of a presigned source with many such requests, so on a long file that copy is most
of the local stack's own CPU. Here ``get_object`` hands a ranged request a ``_KeyBody``
instead of the bytes: it has the object's length and its slices are spans of the key's
buffer, so moto's own range code (parsing, 416, ``Content-Range``, checksum headers) runs
unchanged on it. The span is read, by seeking in the buffer, only as it is sent, a block at
a time: ffmpeg asks for ``bytes=N-`` and hangs up once it has what it needs, so a read costs
what ffmpeg took, not the rest of the file. Everything before the body (the
version, the conditional headers, the storage class) is still moto's ``get_object``.

The patch leans on moto's private code, so ``install`` first checks that moto is the version
it was written for and that the code it relies on is the code it read; otherwise the engine
refuses to start with ``MotoChangedError`` rather than serve wrong bytes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from workflow.local.moto_pins import MotoChangedError, check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto function the patch relies on.
EXPECTED_SOURCES = {
    "S3Response.get_object": "e9731229dec14fcd",
    "S3Response._handle_range_header": "d6480a54a4dff374",
    "S3Response.key_response": "482dd528b49e0359",
    "FakeKey.value": "5e9a53c3d82cc883",
}


# Bytes read from a key's buffer at a time while a ranged answer is sent.
BLOCK = 1024 * 1024

# Set while moto's get_object serves a request with a Range header, on that request's thread.
_ranged = threading.local()


class _KeyBody:
    """A span of a key's bytes as moto's range code uses them: a length and slices, each a
    new span; the bytes are read from the key's buffer only when sent."""

    def __init__(self, key: Any, start: int = 0, stop: int | None = None) -> None:
        self._key = key
        self._start = start
        self._stop = key.size if stop is None else stop

    def __len__(self) -> int:
        return max(0, self._stop - self._start)

    def __getitem__(self, index: slice) -> _KeyBody:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("a key's bytes are sliced with step 1 only")
        return _KeyBody(self._key, self._start + start, self._start + max(start, stop))

    def blocks(self) -> Iterator[bytes]:
        """The span's bytes, a block at a time, so a reader that hangs up stops the reading."""
        at = self._start
        while at < self._stop:
            with self._key.lock:
                self._key._value_buffer.seek(at)
                block: bytes = self._key._value_buffer.read(min(BLOCK, self._stop - at))
            if not block:
                return
            at += len(block)
            yield block

    def __bytes__(self) -> bytes:
        return b"".join(self.blocks())


def _moto_sources() -> dict[str, Callable[..., Any]]:
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    return {
        "S3Response.get_object": S3Response.get_object,
        "S3Response._handle_range_header": S3Response._handle_range_header,
        "S3Response.key_response": S3Response.key_response,
        "FakeKey.value": FakeKey.value.fget,  # type: ignore[attr-defined]
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the ranged-GET patch (workflow/local/ranged_get.py)", _moto_sources(), EXPECTED_SOURCES
    )


@once
def install() -> None:
    """Patch moto (once per process) so a ranged GET reads only its range."""
    check()
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    value: property = FakeKey.__dict__["value"]
    read_all, write = value.fget, value.fset
    if read_all is None:
        raise MotoChangedError("moto's FakeKey.value has no getter")
    S3Response.get_object = _marking_ranged(S3Response.get_object)  # type: ignore[method-assign]
    S3Response.key_response = _materialising(S3Response.key_response)  # type: ignore[method-assign]
    FakeKey.value = property(_lazy_when_ranged(read_all), write)  # type: ignore[assignment,method-assign]


def _marking_ranged(get_object: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(get_object)
    def patched(self: Any) -> Any:
        if not self.headers.get("range"):
            return get_object(self)
        _ranged.active = True
        try:
            return get_object(self)
        finally:
            _ranged.active = False

    return patched


def _lazy_when_ranged(read_all: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(read_all)
    def value(key: Any) -> Any:
        if getattr(_ranged, "active", False):
            return _KeyBody(key)
        return read_all(key)

    return value


def _materialising(key_response: Callable[..., Any]) -> Callable[..., Any]:
    """A span leaves as blocks under moto's server (Flask streams them: ffmpeg's open-ended
    ``bytes=N-`` reads stop costing when it hangs up) and as bytes under ``mock_aws``."""

    @functools.wraps(key_response)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        from flask import has_request_context

        status, headers, body = key_response(self, *args, **kwargs)
        if isinstance(body, _KeyBody):
            headers["content-length"] = str(len(body))
            body = body.blocks() if has_request_context() else bytes(body)
        return status, headers, body

    return patched
