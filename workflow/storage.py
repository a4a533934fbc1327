"""S3 access: the only module that talks to object storage."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from botocore.config import Config

from workflow.errors import (
    ArchivedInputError,
    EncryptedInputError,
    SourceChangedError,
    TransientError,
    UnsupportedInputError,
    VidflowError,
)
from workflow.names import AUDIO
from workflow.tracing import subsegment

_RETRYABLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    # DynamoDB's throttling: a key written faster than its partition takes (1,000 write
    # units a second: a live stream record of 170 KB written six times a segment, each
    # second), or the account's request rate.
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    # A write of an item a transaction is writing at that moment (a live segment's arrival
    # while ``StreamTable.count_published`` counts it): DynamoDB refuses it, and botocore
    # does not retry it.
    "TransactionConflictException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    # Two conditional writes of one key at once: S3 answers one of them 409 and asks for
    # a retry.
    "ConditionalRequestConflict",
}

# Tries of a conditional create that S3 answers 409 ConditionalRequestConflict.
_CONFLICT_ATTEMPTS = 5

# What S3 answers a read pinned to an object that is no longer there as it was.
_CHANGED_CODES = {"PreconditionFailed", "412", "NoSuchVersion", "NoSuchKey", "404"}
_DENIED_CODES = {"AccessDenied", "403"}
# What S3 answers a read of an archived or SSE-C object (an unusable SSE-KMS one: 403).
_UNREADABLE_CODES = {"InvalidObjectState", "InvalidRequest", "400"}

# How every S3 client of the functions is made. A presigned URL (ffmpeg reads sources and
# segments through one) must be signed with SigV4: botocore still presigns with SigV2 in
# us-east-1 and other regions that once took it, and S3 refuses SigV2 for objects under a
# KMS key and on buckets made since 2020. The local stack refuses it too.
S3_CONFIG = Config(signature_version="s3v4")

# The most of a URL's path and query ffmpeg's HTTP reader sends (libavformat's
# MAX_URL_SIZE, less its NUL): it cuts a longer one unsaid, and S3 answers the cut
# signature 403. A function's URL carries its role's session token (~1,200 characters).
FFMPEG_MAX_URL = 4095

# Uploads at once: S3 takes far more, a Lambda's network is what this shares.
UPLOAD_THREADS = 8

# What S3 (and CloudFront, which compresses text types only) answers for each kind of
# published file: a DASH player, a <track>, a browser opening a poster go by it.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".json": "application/json",
}


def content_type(key: str, suffix: str | None = None) -> str:
    """What S3 answers as ``key``'s type, by its suffix (or ``suffix``): the audio track's
    init segment (``audio/init.mp4``) as ``audio/mp4``, the type the MPD gives it."""
    suffix = suffix or Path(key).suffix
    if suffix == ".mp4" and f"/{AUDIO}/" in f"/{key}":
        return "audio/mp4"
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


# What is written once under its name: media. Everything else published may be written
# over under its name (a live playlist each segment, a recording made again, a clip asked
# for again: its manifest, poster and thumbnails).
_WRITTEN_ONCE = (".ts", ".m4s", ".mp4")


def not_an_upload(record: dict[str, Any], ingest_bucket: str) -> str | None:
    """Why an S3 event record names no upload of this stack's (None where it does): a
    record of another bucket (hand-made or misrouted: no function may read it, so its
    job would only fail) or of anything but a created object (a removal uploads
    nothing). A record without an event name (hand-made) is taken for an upload."""
    if ingest_bucket and record["s3"]["bucket"]["name"] != ingest_bucket:
        return "not this stack's ingest bucket"
    if not str(record.get("eventName", "ObjectCreated:")).startswith("ObjectCreated:"):
        return "not a created object"
    return None


def cache_control(key: str) -> str:
    """How long a player, and the CDN (which follows it), may keep ``key``: media a day,
    anything that may be written over a second, as live playlists are."""
    return f"max-age={86400 if key.endswith(_WRITTEN_ONCE) else 1}"


@contextmanager
def transient_aws_errors() -> Iterator[None]:
    """Turn AWS failures worth retrying into ``TransientError`` for the state machine."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error.get("Code") in _RETRYABLE_CODES or status >= 500:
            raise TransientError(f"AWS is unavailable: {error.get('Code')}") from exc
        raise
    except (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.ReadTimeoutError,
    ) as exc:
        raise TransientError(f"AWS could not be reached: {type(exc).__name__}") from exc
    except (
        # A body cut short: the connection reset mid-read, or closed before its length.
        botocore.exceptions.ResponseStreamingError,
        botocore.exceptions.IncompleteReadError,
    ) as exc:
        raise TransientError(f"a read from AWS was cut short: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class Pin:
    """The one object version a job reads: its ``VersionId`` where the bucket keeps
    versions, else its ETag, which every read must match (``If-Match``)."""

    version_id: str | None = None
    etag: str | None = None

    @classmethod
    def of(cls, source: dict[str, Any]) -> Pin:
        """The pin a job's ``source`` record carries (from the upload's S3 event)."""
        version = source.get("version_id")
        # "null" is the version id of an object written while versioning was off.
        return cls(
            version if version not in (None, "", "null") else None, source.get("etag") or None
        )

    def params(self) -> dict[str, str]:
        """Extra GetObject/HeadObject parameters that make a read this version's or none."""
        if self.version_id:
            return {"VersionId": self.version_id}
        if self.etag:
            return {"IfMatch": f'"{self.etag.strip(chr(34))}"'}
        return {}

    def http_headers(self) -> str | None:
        """The same pin for a presigned URL's reader (ffmpeg): headers, CRLF-terminated."""
        if self.version_id or not self.etag:
            return None  # a version id rides in the URL itself
        return f'If-Match: "{self.etag.strip(chr(34))}"\r\n'


def _etag_differs(listed: dict[str, Any], pin: Pin) -> bool:
    """Whether a listing's entry is another object than the one ``pin`` names by ETag."""
    etag = listed.get("ETag")
    return bool(etag and pin.etag and etag.strip('"') != pin.etag.strip('"'))


class Bucket:
    """One S3 bucket seen through a boto3 client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    @contextmanager
    def _reading(self, key: str, pin: Pin | None) -> Iterator[None]:
        """A pinned read of a replaced or deleted object ends in ``SourceChangedError``."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code")
            if pin is not None and (
                code in _CHANGED_CODES
                or self.missing(exc, key, pin)
                or (code in _UNREADABLE_CODES and self._replaced(key, pin))
            ):
                raise SourceChangedError(
                    f"{key} was replaced or deleted while its job ran (an upload that "
                    "replaced it, if any, has a job of its own)"
                ) from None
            if code == "InvalidObjectState":
                # S3 names the archive in its answer: a storage class, or an
                # Intelligent-Tiering access tier.
                archive = error.get("StorageClass") or error.get("AccessTier") or "an archive"
                raise ArchivedInputError(
                    f"{key} is in S3's {archive} storage class, whose bytes S3 serves only "
                    "once restored: restore it and copy it over itself with "
                    "--storage-class STANDARD, or upload it again without an archive class"
                ) from None
            if code in ("400", "InvalidRequest") and self.customer_encrypted(key, pin):
                raise EncryptedInputError(
                    f"{key} is encrypted with a key its uploader keeps (SSE-C), which S3 "
                    "keeps no copy of: upload it again without one (SSE-S3 or SSE-KMS work)"
                ) from None
            if code in _DENIED_CODES and exc.operation_name != "HeadObject":
                kms_key = self.kms_key_refused(key, pin)
                if kms_key is not None:
                    raise EncryptedInputError(
                        f"{key} is encrypted under the KMS key {kms_key} (SSE-KMS), which "
                        "this stack's functions may not use: its key policy and their "
                        "roles must let them kms:Decrypt with it (a key other than the "
                        "stack's KmsKeyArn needs both granted), or upload it again under "
                        "S3's own keys (--sse AES256)"
                    ) from None
            raise

    def _replaced(self, key: str, pin: Pin) -> bool:
        """Whether ``key`` is no longer the object ``pin`` names by its ETag (a bucket
        without versions), told by a listing: a replacement in an archive class, or under
        a key the functions cannot use, answers every read, the pinned ``If-Match`` too,
        as it would its own job's. A version pin reads its own version, whatever came
        since; a listing refused says nothing."""
        if pin.version_id or not pin.etag:
            return False
        try:
            listed = self._listed(key)
        except botocore.exceptions.ClientError:
            return False
        return listed is None or _etag_differs(listed, pin)

    def customer_encrypted(self, key: str, pin: Pin | None = None) -> bool:
        """Whether ``key`` is under a customer-provided key (SSE-C), told by S3's answer to
        a one-byte GET: a HEAD of it is answered a bare 400, which says nothing more."""
        try:
            self.client.get_object(
                Bucket=self.name, Key=key, Range="bytes=0-0", **(pin.params() if pin else {})
            )
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            return bool(
                error.get("Code") == "InvalidRequest"
                and "Server Side Encryption" in str(error.get("Message"))
            )
        return False

    def kms_key_refused(self, key: str, pin: Pin | None = None) -> str | None:
        """The KMS key of an SSE-KMS ``key`` whose GET was refused, or None where it is
        not one. A HEAD needs no kms:Decrypt and s3:GetObject grants both: a HEAD
        answered after a GET refused means KMS refused it."""
        try:
            described = self.client.head_object(
                Bucket=self.name, Key=key, **(pin.params() if pin else {})
            )
        except botocore.exceptions.ClientError:
            return None
        if not str(described.get("ServerSideEncryption")).startswith("aws:kms"):
            return None  # (aws:kms, or aws:kms:dsse)
        return str(described.get("SSEKMSKeyId") or "aws/s3")

    def missing(
        self, exc: botocore.exceptions.ClientError, key: str, pin: Pin | None = None
    ) -> bool:
        """Whether a read of ``key`` (pinned to ``pin``) failed because it is not there.

        S3 answers a read of a missing key 403, not 404, to a role without an unlimited
        ListBucket grant (the functions' are limited to prefixes), so a 403 counts as
        missing only where listing finds no ``key``, or, pinned to a version, the key's
        current version is another; where that look is refused too, it does not."""
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return True
        if code not in _DENIED_CODES:
            return False
        try:
            listed = self._listed(key)
            if listed is None:
                return True
            if pin is None or pin.version_id is None:
                # (refused, and listed under another ETag: replaced by one it cannot read)
                return pin is not None and _etag_differs(listed, pin)
            current = self.client.head_object(Bucket=self.name, Key=key).get("VersionId")
        except botocore.exceptions.ClientError:
            return False
        return bool(current != pin.version_id)

    def head(self, key: str, pin: Pin | None = None) -> dict[str, Any]:
        with self._reading(key, pin):
            response: dict[str, Any] = self.client.head_object(
                Bucket=self.name, Key=key, **(pin.params() if pin else {})
            )
        return response

    @contextmanager
    def pinned(self, key: str, pin: Pin) -> Iterator[None]:
        """Reads of ``key`` pinned to one version, checked again once they are over,
        failed or not: an object replaced mid-read (ffmpeg may see a pinned read
        refused as an error or as an early end) ends in ``SourceChangedError``."""
        try:
            yield
        except VidflowError:
            self.head(key, pin)
            raise
        self.head(key, pin)

    def read_range(self, key: str, size: int, length: int, pin: Pin | None = None) -> bytes:
        """The first ``length`` bytes of ``key`` (``size`` bytes long)."""
        return self.read_span(key, 0, min(size, length), pin)

    def read_span(self, key: str, start: int, stop: int, pin: Pin | None = None) -> bytes:
        """Bytes ``[start, stop)`` of ``key``: one closed-range GET, so S3 sends no more."""
        if stop <= start:
            return b""
        with self._reading(key, pin), transient_aws_errors():
            body = self.client.get_object(
                Bucket=self.name,
                Key=key,
                Range=f"bytes={start}-{stop - 1}",
                **(pin.params() if pin else {}),
            )["Body"]
            data: bytes = body.read()
        return data

    def presign(self, key: str, expires: int = 3600, pin: Pin | None = None) -> str:
        """A GET URL for ``key``; with a version pin, for that version only.

        The object's bytes, whatever ``Content-Encoding`` its uploader gave it: told
        ``gzip``, ffmpeg would inflate a video that is not compressed and spin on the
        result until its time limit, on every retry. (A file that is gzip is refused by
        its first bytes, as any non-video is.)
        """
        params = {"Bucket": self.name, "Key": key, "ResponseContentEncoding": "identity"}
        if pin and pin.version_id:
            params["VersionId"] = pin.version_id
        with self._reading(key, pin):  # (the local stack holds a URL when it is made)
            url: str = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires
            )
        if "X-Amz-Algorithm=AWS4-HMAC-SHA256" not in url:
            raise VidflowError("an S3 client that presigns must be made with storage.S3_CONFIG")
        sent = len(url.split("/", 3)[3]) + 1  # (the path's own "/" on)
        if sent > FFMPEG_MAX_URL:
            raise UnsupportedInputError(
                f"{key[:60]!r}... is {len(key.encode())} bytes, {sent} characters in the URL "
                f"ffmpeg would read it from, which reads {FFMPEG_MAX_URL} (each byte outside "
                "ASCII, space or symbol but - _ . ~ / takes three): upload it under a "
                "shorter key"
            )
        return url

    def get_bytes(self, key: str, pin: Pin | None = None) -> bytes:
        with self._reading(key, pin):
            data: bytes = self.client.get_object(
                Bucket=self.name, Key=key, **(pin.params() if pin else {})
            )["Body"].read()
        return data

    def get_small(self, key: str, most: int, pin: Pin | None = None) -> bytes | None:
        """``key``'s bytes, or None where it holds more than ``most``: told by the
        answer's length before any of its body is read, so a huge upload of a small
        record (``stream.json``, ``END``, a clip request) costs no memory."""
        with self._reading(key, pin):
            response = self.client.get_object(
                Bucket=self.name, Key=key, **(pin.params() if pin else {})
            )
        body = response["Body"]
        if int(response["ContentLength"]) > most:
            body.close()
            return None
        data: bytes = body.read()
        return data

    def get_json(self, key: str) -> Any:
        return json.loads(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def put_json(self, key: str, value: Any) -> None:
        self.put_bytes(key, json.dumps(value, indent=1).encode(), ".json")

    def create_json(self, key: str, value: Any) -> bool:
        """Write ``key`` only if no object has that key (a conditional PUT, atomic in S3);
        False if one had."""
        body = json.dumps(value).encode()
        attempts = 0
        while True:
            try:
                self.client.put_object(Bucket=self.name, Key=key, Body=body, IfNoneMatch="*")
                return True
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "PreconditionFailed":
                    return False
                # Another conditional write of the key was in flight: S3 asks for a retry,
                # which then finds the winner's object (412) or none (written).
                attempts += 1
                if code != "ConditionalRequestConflict" or attempts == _CONFLICT_ATTEMPTS:
                    raise
                time.sleep(0.05 * 2**attempts)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        suffix: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        extra = {"Metadata": dict(metadata)} if metadata else {}
        self.client.put_object(
            Bucket=self.name,
            Key=key,
            Body=data,
            ContentType=content_type(key, suffix),
            CacheControl=cache_control(key),
            **extra,
        )

    def copy(self, source_key: str, key: str) -> None:
        """Copy an object of this bucket to ``key``, inside S3 (nothing is downloaded)."""
        self.client.copy_object(
            Bucket=self.name, Key=key, CopySource={"Bucket": self.name, "Key": source_key}
        )

    def download(self, key: str, path: Path) -> Path:
        with subsegment("s3 download"):
            self.client.download_file(self.name, key, str(path))
        return path

    def upload(self, path: Path, key: str, metadata: Mapping[str, str] | None = None) -> None:
        extra: dict[str, Any] = {
            "ContentType": content_type(key, path.suffix),
            "CacheControl": cache_control(key),
        }
        if metadata:
            extra["Metadata"] = dict(metadata)
        self.client.upload_file(str(path), self.name, key, ExtraArgs=extra)

    def upload_all(
        self, files: Mapping[str, Path], metadata: Mapping[str, str] | None = None
    ) -> None:
        """Upload every ``key: path`` pair, several at once (each with ``metadata``)."""
        with (
            subsegment("s3 upload", objects=len(files)),
            ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool,
        ):
            list(pool.map(lambda pair: self.upload(pair[1], pair[0], metadata), files.items()))

    def put_all(self, bodies: Mapping[str, bytes]) -> None:
        """Write every ``key: body`` pair, several at once."""
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            list(pool.map(lambda pair: self.put_bytes(*pair), bodies.items()))

    def keys(self, prefix: str) -> list[str]:
        return [item["Key"] for item in self.objects(prefix)]

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix``: its ``Key``, ``ETag``, ``Size``, ``LastModified``."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            yield from page.get("Contents", [])

    def versions(self, key: str) -> list[dict[str, Any]]:
        """Every stored version of ``key``, newest first: its ``VersionId`` (``"null"``
        where the bucket keeps none), ``ETag`` and ``LastModified``; deletions left out."""
        paginator = self.client.get_paginator("list_object_versions")
        found = [
            version
            for page in paginator.paginate(Bucket=self.name, Prefix=key)
            for version in page.get("Versions", [])
            if version["Key"] == key
        ]
        return sorted(found, key=lambda version: version["LastModified"], reverse=True)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists, by listing its prefix: a HEAD on a missing key answers
        403, not 404, to a role whose ListBucket grant is limited to prefixes."""
        return self._listed(key) is not None

    def _listed(self, key: str) -> dict[str, Any] | None:
        """``key``'s entry in a listing of its prefix, or None where it is not there."""
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=key, MaxKeys=1)
        return next((item for item in listed.get("Contents", []) if item["Key"] == key), None)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; how many."""
        return self.delete_keys(self.keys(prefix))

    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete ``keys``. S3 answers a batch 200 and lists the keys it could not delete
        in ``Errors``: the first is raised as the ``ClientError`` a single delete would
        have, so a refused or throttled clean-up is never silent."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            answer = self.client.delete_objects(
                Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
            )
            for error in answer.get("Errors", [])[:1]:
                raise botocore.exceptions.ClientError(
                    {
                        "Error": {
                            "Code": error.get("Code", ""),
                            "Message": f"{error.get('Key')}: {error.get('Message', '')}",
                        }
                    },
                    "DeleteObjects",
                )
        return len(keys)


class RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object that fetches only the blocks read.

    A demuxer that reads a container's index (an MP4's ``moov``, a Matroska file's cues,
    the tail of an MPEG-TS) costs those blocks, not the object: ``bytes_read`` and
    ``requests`` say what it cost. A read that carries on from the last block fetched
    fetches the next ``AHEAD`` blocks in one GET (reading on costs one request per MiB,
    not per block), and the last ``KEPT`` blocks are kept, since demuxers read small
    headers and then the data right after them.
    """

    BLOCK = 256 * 1024
    AHEAD = 4
    KEPT = 16

    def __init__(self, bucket: Bucket, key: str, size: int, pin: Pin | None = None) -> None:
        super().__init__()
        self.bucket, self.key, self.size, self.pin = bucket, key, size, pin
        self.position = 0
        self.bytes_read = 0
        self.requests = 0
        self._blocks: dict[int, bytes] = {}
        self._last = -2

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self.position)
        done = 0
        while done < wanted:
            number, at = divmod(self.position + done, self.BLOCK)
            block = self._block(number)
            piece = block[at : at + wanted - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
        self.position += done
        return done

    def _block(self, number: int) -> bytes:
        block = self._blocks.pop(number, None)
        if block is None:
            count = self.AHEAD if number == self._last + 1 else 1
            start = number * self.BLOCK
            data = self.bucket.read_span(
                self.key, start, min(self.size, start + count * self.BLOCK), self.pin
            )
            self.bytes_read += len(data)
            self.requests += 1
            for k in range(count):
                self._keep(number + k, data[k * self.BLOCK : (k + 1) * self.BLOCK])
            self._last = number + count - 1
            block = self._blocks.pop(number)
        self._keep(number, block)  # the most recently used last
        return block

    def _keep(self, number: int, block: bytes) -> None:
        if not block:
            return
        self._blocks[number] = block
        while len(self._blocks) > self.KEPT:
            del self._blocks[next(iter(self._blocks))]
