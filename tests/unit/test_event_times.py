"""An event's time as the steps read it: S3's ``eventTime`` and a source's ``uploaded_at``,
whatever form a hand-written event gives it, on a machine in any time zone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from workflow.runtime import Clients, event_time
from workflow.vod import items
from workflow.vod import publish as vod_publish
from workflow.vod.jobs import JobPaths

NOON = datetime(2026, 12, 5, 12, tzinfo=UTC)


@pytest.fixture
def chicago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A laptop in America/Chicago (UTC-6 in December)."""
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("2026-12-05T12:00:00.000Z", NOON),
        ("2026-12-05T12:00:00.000+00:00", NOON),
        ("2026-12-05T06:00:00-06:00", NOON),
        ("2026-12-05T12:00:00", NOON),  # no offset: UTC, as S3's times are
        ("Sat, 05 Dec 2026 12:00:00 GMT", None),  # no ISO 8601 (AWS CLI v1's head-object)
        ("not a time", None),
        (None, None),
        ("", None),
    ],
)
def test_an_event_time_is_read_in_utc_whatever_the_machine_s_zone(
    chicago: None, text: str | None, at: datetime | None
) -> None:
    assert event_time(text) == at


@pytest.mark.parametrize(
    ("uploaded_at", "waited"),
    [("2026-12-05T11:00:00", [3600.0]), ("2026-12-05T11:00:00Z", [3600.0]), ("not a time", [])],
)
def test_publish_counts_its_latency_from_any_upload_time_and_never_fails_on_one(
    chicago: None, monkeypatch: pytest.MonkeyPatch, uploaded_at: str, waited: list[float]
) -> None:
    # GIVEN a job published at noon UTC whose event (written by hand, as probe accepts
    # it) says its upload time without an offset, or in no form of time at all
    seconds: list[float] = []
    monkeypatch.setattr(vod_publish.metrics, "seconds", lambda name, value: seconds.append(value))
    manifest: dict[str, Any] = {
        "job_id": "clip-0123456789abcdef",
        "duration": 12.0,
        "renditions": [{}],
        "source": {"uploaded_at": uploaded_at},
    }
    # WHEN Publish counts it, after the master is written and the job announced
    vod_publish._count_published(manifest, 0, Clients(s3=None, clock=NOON.timestamp))
    # THEN it waited an hour (in UTC, not the laptop's zone), or nothing is measured;
    # it never fails the published job
    assert seconds == waited


class _Output:
    def __init__(self, failed_at: str) -> None:
        self.failed_at, self.deleted = failed_at, False

    def exists(self, key: str) -> bool:
        return True

    def get_json(self, key: str) -> dict[str, Any]:
        return {"failed_at": self.failed_at}

    def delete_prefix(self, prefix: str) -> None:
        self.deleted = True


@pytest.mark.parametrize(
    ("uploaded_at", "began", "removed"),
    [
        # uploaded (no offset: UTC) before the failure
        ("2026-12-05T11:00:00", "2026-12-05T12:30:00.000+00:00", True),
        # an earlier run's failure of the same job id
        ("2026-12-05T13:00:00", "2026-12-05T13:00:05.000+00:00", False),
        # no time said, or none readable: the item's start decides
        ("not a time", "2026-12-05T11:59:00.000+00:00", True),
        ("not a time", "2026-12-05T13:00:05.000+00:00", False),
        (None, "2026-12-05T13:00:05.000+00:00", False),
    ],
)
def test_an_item_after_its_job_failed_removes_its_output_whatever_the_upload_time(
    chicago: None, uploaded_at: str | None, began: str, removed: bool
) -> None:
    output = _Output("2026-12-05T12:00:00.000+00:00")
    items._remove_if_failed_since(output, JobPaths("clip-0123456789abcdef"), uploaded_at, began)  # type: ignore[arg-type]
    assert output.deleted is removed
