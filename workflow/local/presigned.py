"""Presigned GETs of a pinned version read as S3 reads them once its key is deleted.

For a signed URL, moto 5.2.5's ``S3Response._invalid_headers`` checks that request
metadata the URL names (``content-type=``, ``content-encoding=``, ...) came as headers too.
It looks for each name with a regex that also matches the response overrides a URL may
carry (``response-content-encoding=identity``, which every source URL vidflow presigns
does), then finds no ``Content-Encoding`` request header and answers 403
``SignatureDoesNotMatch``. moto only runs that check when the key has no current object:
a versioned key deleted mid-job, its pinned version still there. S3 reads the version:
``response-*`` parameters set the answer's headers, they name nothing of the request.
So a job whose source was deleted mid-job failed locally (a ``TranscodeError``, ffmpeg's
403) and published on AWS.

Here the check reads the URL's query parameters by name: ``content-encoding`` is checked,
``response-content-encoding`` is not. Like the other patches, it checks moto's version and
the source of what it replaces first, and the engine refuses to start on another.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of the moto method the patch replaces.
EXPECTED_SOURCES = {"S3Response._invalid_headers": "2e2df3031bec0d58"}

# The request metadata a presigned URL may name, and the header each must come as.
METADATA = {
    "content-disposition": "Content-Disposition",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "content-length": "Content-Length",
    "content-md5": "Content-MD5",
    "content-type": "Content-Type",
}

_replaced: dict[str, Any] = {}


def _moto_sources() -> dict[str, Any]:
    from moto.s3.responses import S3Response

    return _replaced or {"S3Response._invalid_headers": S3Response._invalid_headers}


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the presigned-URL patch (workflow/local/presigned.py)", _moto_sources(), EXPECTED_SOURCES
    )


@once
def install() -> None:
    """Patch moto (once per process) so a URL's response overrides are not request metadata."""
    check()
    from moto.s3.responses import S3Response

    _replaced["S3Response._invalid_headers"] = S3Response._invalid_headers
    S3Response._invalid_headers = _invalid_headers  # type: ignore[method-assign]


def _invalid_headers(self: Any, url: str, headers: dict[str, str]) -> bool:
    """Whether request metadata the URL names did not come as the header it names."""
    named = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return any(
        name in named and headers.get(header) != named[name] for name, header in METADATA.items()
    )
