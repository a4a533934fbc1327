"""Object PUTs that cost one pass over their bytes in the local stack.

moto 5.2.5 stores a PUT's body in a ``SpooledTemporaryFile`` that spills to disk past
5 MB: the whole body is first copied into memory and then copied again to the file. Its
ETag is computed later, on first use (the PUT's own answer and its S3 event both use it),
by reading the file back and hashing it: for the 277 MB upload of the VOD benchmark that
was 0.8 s of writing and 0.4 s of reading and hashing, one after the other, between the
last byte arriving and the upload's answer.

Here a body past moto's buffer goes straight to the file, and its MD5 is taken from
the bytes in memory while they are written (hashing and writing both let go of the GIL,
so the two share the machine's CPUs). The ETag is then the digest already taken, which is
the MD5 of the key's bytes exactly as moto would compute it. Like ``ranged_get``, the patch
checks moto's version and the source of what it replaces first, and the engine refuses
to start on a moto it does not know.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from workflow.local.moto_pins import MotoChangedError, check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto function the patch replaces.
EXPECTED_SOURCES = {
    "FakeKey.value (setter)": "519ac4d9ad6adcd8",
    "FakeKey.etag": "aa3062e82e089cb3",
}

# Bodies at least this large are hashed on a thread of their own while they are written.
HASH_ASIDE = 1024 * 1024

# moto's own functions, once the patch has replaced them.
_replaced: dict[str, Callable[..., Any]] = {}


def _moto_sources() -> dict[str, Callable[..., Any]]:
    from moto.s3.models import FakeKey

    return _replaced or {
        "FakeKey.value (setter)": FakeKey.__dict__["value"].fset,
        "FakeKey.etag": FakeKey.__dict__["etag"].fget,
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned("the PUT patch (workflow/local/s3_put.py)", _moto_sources(), EXPECTED_SOURCES)


@once
def install() -> None:
    """Patch moto (once per process) so a PUT's body is written once and hashed meanwhile."""
    check()
    from moto.s3.models import FakeKey

    value: property = FakeKey.__dict__["value"]
    etag: property = FakeKey.__dict__["etag"]
    if value.fset is None or etag.fget is None:
        raise MotoChangedError("moto's FakeKey.value has no setter or its etag no getter")
    FakeKey.value = property(value.fget, _write_once)  # type: ignore[assignment,method-assign]
    FakeKey.etag = property(_digest_taken(etag.fget))  # type: ignore[assignment,method-assign]
    _replaced.update({"FakeKey.value (setter)": value.fset, "FakeKey.etag": etag.fget})


def _write_once(key: Any, new_value: bytes | str) -> None:
    """moto's setter, but a body past the buffer's size is written to its file directly
    and its MD5 is kept for the ETag."""
    if isinstance(new_value, str):
        new_value = new_value.encode("utf-8")
    buffer = key._value_buffer
    buffer.seek(0)
    buffer.truncate()
    if len(new_value) > key._max_buffer_size:
        buffer.rollover()
    digest = hashlib.md5(usedforsecurity=False)
    if len(new_value) >= HASH_ASIDE:
        hashing = threading.Thread(target=digest.update, args=(new_value,), daemon=True)
        hashing.start()
        buffer.write(new_value)
        hashing.join()
    else:
        digest.update(new_value)
        buffer.write(new_value)
    key.contentsize = len(new_value)
    key._value_md5 = digest.hexdigest()


def _digest_taken(etag: Callable[[Any], str]) -> Callable[[Any], str]:
    def patched(key: Any) -> str:
        if key._etag is None and getattr(key, "_value_md5", None):
            key._etag = key._value_md5
        return etag(key)

    return patched
