"""Objects uploaded with a customer-provided key (SSE-C) read as S3 reads them.

S3 keeps no copy of an SSE-C key: a GET or HEAD of such an object without the same key
(``x-amz-server-side-encryption-customer-key-MD5`` and the key itself) is answered 400,
``InvalidRequest``. moto 5.2.5 ignores the SSE-C headers: it stores the bytes and serves
them to anyone, so locally a job of an SSE-C upload published, and on AWS it failed.

Here a PUT, or a multipart upload, made with an SSE-C key marks its object with the
key's MD5, and a GET or HEAD of a marked object that does not name that key is answered
as S3 answers it; its tags, ACL and other subresources are served without the key, as
S3 serves them. A copy is marked with the key its request names for the copy, if any
(reading its source is not held to the source's key).
Like the other patches, it checks moto's version and the source of what it wraps first,
and the engine refuses to start on another.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto method the patch wraps.
EXPECTED_SOURCES = {
    "S3Response.key_response": "482dd528b49e0359",
    "S3Backend.put_object": "db803f2da9d786ad",
    "S3Backend.create_multipart_upload": "20b9a24585cf8144",
    "S3Backend.complete_multipart_upload": "f16c9a08e5db3f4f",
}

KEY_MD5 = "x-amz-server-side-encryption-customer-key-md5"
# The attribute an SSE-C object (or multipart upload) carries: its key's MD5 (base64).
MARK = "vidflow_sse_c_key_md5"

# What S3 answers a GET of an SSE-C object without its key.
REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>'
    b"The object was stored using a form of Server Side Encryption. The correct "
    b"parameters must be provided to retrieve the object.</Message></Error>"
)

# Whether any object or upload was ever marked: until one is, a GET or HEAD (the chunk
# jobs' many ranged reads) is served without looking its object up.
_marked = False
# The SSE-C key MD5 of the request this thread serves, while it writes.
_request = threading.local()


def _moto_sources() -> dict[str, Callable[..., Any]]:
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    return {
        "S3Response.key_response": S3Response.key_response,
        "S3Backend.put_object": S3Backend.put_object,
        "S3Backend.create_multipart_upload": S3Backend.create_multipart_upload,
        "S3Backend.complete_multipart_upload": S3Backend.complete_multipart_upload,
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned("the SSE-C patch (workflow/local/sse_c.py)", _moto_sources(), EXPECTED_SOURCES)


@once
def install() -> None:
    """Patch moto (once per process) so an SSE-C object is read only with its key."""
    check()
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    S3Response.key_response = _keyed(S3Response.key_response)  # type: ignore[method-assign]
    S3Backend.put_object = _marking(S3Backend.put_object)  # type: ignore[method-assign]
    S3Backend.create_multipart_upload = _marking(S3Backend.create_multipart_upload)  # type: ignore[method-assign]
    S3Backend.complete_multipart_upload = _completing(S3Backend.complete_multipart_upload)  # type: ignore[method-assign]


def _keyed(key_response: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(key_response)
    def patched(self: Any, request: Any, full_url: str, *args: Any, **kwargs: Any) -> Any:
        given = request.headers.get(KEY_MD5)
        if _marked and request.method in ("GET", "HEAD") and _reads_the_object(full_url):
            wanted, region = _mark_of(self, request, full_url)
            if wanted is not None and wanted != given:
                # (S3 names the bucket's region in every answer; botocore reads a HEAD's
                # bare 400 as a wrong region and looks for it)
                headers = {"x-amz-bucket-region": region}
                return 400, headers, REFUSED if request.method == "GET" else b""
            return key_response(self, request, full_url, *args, **kwargs)
        _request.key_md5 = given
        try:
            return key_response(self, request, full_url, *args, **kwargs)
        finally:
            _request.key_md5 = None

    return patched


# Query parameters of a GET or HEAD of the object itself (a version, a part, the answer's
# headers, a presigned URL's signature); any other names a subresource (tagging, acl, ...).
_OBJECT_READ = ("versionId", "partNumber", "x-id", "response-", "X-Amz-", "x-amz-")


def _reads_the_object(full_url: str) -> bool:
    """Whether a GET or HEAD of ``full_url`` reads the object, not one of its subresources."""
    query = parse_qs(urlsplit(full_url).query, keep_blank_values=True)
    return all(name.startswith(_OBJECT_READ) for name in query)


def _mark_of(response: Any, request: Any, full_url: str) -> tuple[str | None, str]:
    """The SSE-C key MD5 of the object (version) a GET or HEAD names, if it has one, and
    its bucket's region."""
    from moto.s3.exceptions import S3ClientError

    response.setup_class(request)
    bucket = response.parse_bucket_name_from_url(request, full_url)
    version = parse_qs(urlsplit(full_url).query).get("versionId", [None])[0]
    try:
        region = response.backend.get_bucket(bucket).region_name
        found = response.backend.get_object(bucket, response.parse_key_name(), version)
    except S3ClientError:
        return None, ""  # (moto answers what is not there itself)
    return getattr(found, MARK, None), region


def _marking(make: Callable[..., Any]) -> Callable[..., Any]:
    """An object, or a multipart upload, made by a request that names an SSE-C key carries
    its MD5. (A copy names its own key, if any: the source's is another header.)"""

    @functools.wraps(make)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = make(self, *args, **kwargs)
        mark = getattr(_request, "key_md5", None)
        if made is not None and mark:
            _mark(made, mark)
        return made

    return patched


def _completing(complete: Callable[..., Any]) -> Callable[..., Any]:
    """The object a multipart upload completes carries the upload's SSE-C mark."""

    @functools.wraps(complete)
    def patched(self: Any, bucket_name: str, multipart_id: str, *args: Any, **kwargs: Any) -> Any:
        multipart = self.get_bucket(bucket_name).multiparts.get(multipart_id)
        mark = getattr(multipart, MARK, None)
        made = complete(self, bucket_name, multipart_id, *args, **kwargs)
        if made is not None and mark:
            _mark(made, mark)
        return made

    return patched


def _mark(made: Any, mark: str) -> None:
    global _marked
    setattr(made, MARK, mark)
    _marked = True
