"""Uploads that S3 takes but will not serve: the job fails with a named error a user can
act on, publishes nothing, and never hangs."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_upload_in_an_archive_storage_class_fails_named_and_publishes_nothing(
    storage_class: str, clip: Any, run_job: Any
) -> None:
    # GIVEN a video uploaded straight into an archive tier (aws s3 cp --storage-class),
    # whose bytes S3 refuses to serve (InvalidObjectState) until it is restored
    source = clip("half_second")
    key = f"uploads/archived-{storage_class.lower()}.mp4"
    # WHEN its job runs
    run = run_job(source, key=key, extra={"StorageClass": storage_class})
    # THEN it fails with the workflow's own error, saying why and what to do
    assert run.status == "FAILED"
    assert run.error == "ArchivedInputError", run.cause
    assert run.cause and "\n" not in run.cause
    assert storage_class in run.cause and key in run.cause
    assert run.output_keys == [], "a failed job published something"
    assert run.failure is not None and run.failure["error"] == "ArchivedInputError"
