"""The reconciler's listings of a stream's unpadded segment names (``10.ts`` sorts before
``9.ts``): whatever the names and the page size, every lost segment is found."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from workflow.live import lost
from workflow.live.store import StreamRecord

UPLOADED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(key: str) -> dict[str, Any]:
    return {"Key": key, "ETag": '"e"', "Size": 1, "LastModified": UPLOADED_AT}


class _Listing:
    """S3's ListObjectsV2 over a set of keys: in byte order, from ``StartAfter``."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)

    def list_objects_v2(
        self, *, Bucket: str, Prefix: str, StartAfter: str = "", MaxKeys: int = 1000
    ) -> dict[str, Any]:
        after = self.keys[bisect.bisect_right(self.keys, StartAfter) :]
        under = [k for k in after if k.startswith(Prefix)]
        return {
            "Contents": [_entry(k) for k in under[:MaxKeys]],
            "IsTruncated": len(under) > MaxKeys,
        }


class _Ingest:
    name = "ingest"

    def __init__(self, keys: list[str]) -> None:
        self.client = _Listing(keys)

    def objects(self, prefix: str) -> list[dict[str, Any]]:
        return [_entry(k) for k in self.client.keys if k.startswith(prefix)]


class _Table:
    def __init__(self, record: StreamRecord, arrivals: dict[int, dict[str, Any]]) -> None:
        self.record, self.published = record, arrivals

    def get(self, stream: str) -> StreamRecord:
        return self.record

    def arrivals(self, stream: str, first: int = 0) -> dict[int, dict[str, Any]]:
        return {s: a for s, a in self.published.items() if s >= first}

    def note_reconciled(self, stream: str, below: int) -> None:
        pass


class _Output:
    def exists(self, key: str) -> bool:
        return False


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[int], set[int], int]:
    """Uploaded sequence numbers (across powers of ten), those that arrived, and how far
    the stream is accounted for: every upload below it arrived, and it is at most one past
    the newest arrival (a number is given up only once a later one arrived)."""
    numbers = st.one_of(
        st.integers(0, 30), st.integers(0, 1200), st.sampled_from([9, 10, 99, 100, 101, 999, 1000])
    )
    uploaded = sorted(draw(st.sets(numbers, min_size=1, max_size=60)))
    arrived = draw(st.sets(st.sampled_from(uploaded)))
    # The pages reach ``lost.REACH`` past the newest number the table knows, by design.
    known = max([*arrived, uploaded[0]])
    uploaded = [s for s in uploaded if s <= known + lost.REACH]
    lowest_open = next((s for s in uploaded if s not in arrived), uploaded[-1] + 1)
    accounted = draw(st.integers(0, min(lowest_open, max(arrived) + 1 if arrived else 0)))
    return uploaded, arrived, accounted


@settings(max_examples=150, deadline=None, derandomize=True)
@given(stream=streams(), page=st.sampled_from([2, 7, 1000]))
@example(stream=([2, 11, 20], set(), 0), page=2)
def test_every_lost_segment_is_found_whatever_the_page_size(
    stream: tuple[list[int], set[int], int], page: int
) -> None:
    # GIVEN a stream's uploads, some of whose events were lost, listed ``page`` keys a page
    uploaded, arrived, accounted = stream
    keys = [f"live/s/{s}.ts" for s in uploaded] + ["live/s/stream.json", "live/t/5.ts"]
    at = (UPLOADED_AT - timedelta(hours=1)).timestamp()
    table = _Table(
        StreamRecord(None, None, None, 0, False, lowest_upload=uploaded[0], reconciled=accounted),
        {s: {"at": at, "failed": False, "upload": "x"} for s in arrived},
    )
    # WHEN the reconciler looks at the stream past the uploads' grace period
    with mock.patch.object(lost, "PAGE_KEYS", page):
        found = lost._stream_unprocessed(
            "s",
            _Ingest(keys),  # type: ignore[arg-type]
            _Output(),  # type: ignore[arg-type]
            table,  # type: ignore[arg-type]
            UPLOADED_AT - timedelta(days=1),
            UPLOADED_AT + timedelta(hours=1),
        )
    # THEN it finds every upload from where it is accounted on that did not arrive
    numbers = sorted(lost.segment_sequence(f["Key"].rpartition("/")[2]) or 0 for f in found)
    assert numbers == [s for s in uploaded if s >= accounted and s not in arrived]
