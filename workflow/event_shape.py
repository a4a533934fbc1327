"""The shape of each function's event, checked at its handler before anything is read.

A state machine passes each step the fields it needs, but a person invokes a function by
hand (``vidflow invoke``, ``sam local invoke -e``) or redrives an event they edited, and
another rule may route an event of another source to it. Such an event is refused by
name (``EventError``, naming the field) instead of failing somewhere inside with a
``KeyError``, and a name that becomes part of an S3 key (a job id, a stream, a clip) is
one a job or stream can have: ``<job>/360p`` would otherwise point a step's writes, or
``RecordFailure``'s removal of partial output, into another job's published files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from workflow.errors import EventError
from workflow.live.paths import MAX_SEQUENCE, is_clip_name, is_stream_id
from workflow.vod.records import WorkItem

Handler = TypeVar("Handler", bound=Callable[..., Any])

# Job ids are ``<stem>-<16 hex digits>`` (``jobs.job_id``), and execution names, so at
# most 80 characters; streams and clips are named as their keys allow (``live.paths``).
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
# An S3 notification holds one record; more than this is not one S3 sent.
_MAX_RECORDS = 100


@dataclass(frozen=True)
class Field:
    """What one field of an event must be: ``what`` says it to the user."""

    what: str
    fits: Callable[[Any], bool]
    # An optional field may be left out or null; where it is given, it fits.
    required: bool = True


def maybe(field: Field) -> Field:
    """``field``, where an event may leave it out (or give null)."""
    return replace(field, required=False)


def _sequence(value: Any) -> bool:
    # (the steps read it with int(): a number, or its digits)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQUENCE


def _work_item(value: dict[str, Any]) -> bool:
    try:
        item = WorkItem.from_dict(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return isinstance(item.kind, str)


def _s3_records(value: Any) -> bool:
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_RECORDS:
        return False
    for record in value:
        s3 = record.get("s3") if isinstance(record, dict) else None
        bucket = s3.get("bucket") if isinstance(s3, dict) else None
        uploaded = s3.get("object") if isinstance(s3, dict) else None
        if not (isinstance(bucket, dict) and isinstance(bucket.get("name"), str)):
            return False
        if not (isinstance(uploaded, dict) and isinstance(uploaded.get("key"), str)):
            return False
        size = uploaded.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return False
    return True


JOB_ID = Field(
    "a job id (letters, digits, '_' and '-', as StartJob names a job)",
    lambda value: isinstance(value, str) and _JOB_ID.fullmatch(value) is not None,
)
STREAM = Field(
    "a stream name (1 to 48 letters, digits, '_' or '-')",
    lambda value: isinstance(value, str) and is_stream_id(value),
)
CLIP = Field(
    "a clip name (1 to 22 letters, digits, '_' or '-')",
    lambda value: isinstance(value, str) and is_clip_name(value),
)
SEQUENCE = Field(f"a segment number from 0 to {MAX_SEQUENCE}", _sequence)
SOURCE = Field(
    "an S3 object: a JSON object with a 'bucket' and a 'key'",
    lambda value: (
        isinstance(value, dict)
        and isinstance(value.get("bucket"), str)
        and isinstance(value.get("key"), str)
    ),
)


def source_in(bucket: str) -> Field:
    """``SOURCE``, of ``bucket`` (the stack's ingest bucket) only: an object elsewhere is
    none the stack reads (its role may not), and would fail inside as ``NoSuchBucket``
    or ``AccessDenied``. With no bucket set (a function run outside its stack), any."""
    if not bucket:
        return SOURCE
    return Field(
        f"an S3 object of the stack's ingest bucket: a JSON object with a 'key' and "
        f"'bucket': {bucket!r}",
        lambda value: SOURCE.fits(value) and value["bucket"] == bucket,
    )


ITEM = Field(
    "a work item of the job's plan: a JSON object with its 'kind' and that kind's fields",
    lambda value: isinstance(value, dict) and _work_item(value),
)
OBJECT = Field("a JSON object", lambda value: isinstance(value, dict))
S3_RECORDS = Field(
    f"a list of 1 to {_MAX_RECORDS} S3 event records, each with s3.bucket.name, "
    "s3.object.key and (if any) a whole s3.object.size",
    _s3_records,
)


def check_event(event: Any, fields: dict[str, Field]) -> None:
    """Raise ``EventError`` naming the first of ``fields`` that ``event`` lacks or holds
    in another shape."""
    if not isinstance(event, dict):
        raise EventError(f"the event is {_shown(event)}, not a JSON object")
    for name, field in fields.items():
        if not field.required and event.get(name) is None:
            continue
        if name not in event:
            raise EventError(f"the event has no {name!r}: it takes {field.what}")
        if not field.fits(event[name]):
            raise EventError(f"the event's {name!r} is {_shown(event[name])}, not {field.what}")


def takes(**fields: Field) -> Callable[[Handler], Handler]:
    """A handler that first checks its event has ``fields``, each in its shape."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(event: Any, context: Any) -> Any:
            check_event(event, fields)
            return handler(event, context)

        return checked  # type: ignore[return-value]

    return decorate


def _shown(value: Any) -> str:
    """``value`` as the user wrote it, cut short: the error is one line."""
    if isinstance(value, (dict, list)):
        return f"a {'JSON object' if isinstance(value, dict) else 'list'} of {len(value)}"
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."
