"""Two uploads of one key each publish, in the order their jobs end: the superseded one's
announcement can come last, so each says which upload of the key it is."""

import time
from typing import Any

from tests.conftest import _wait
from workflow.vod.jobs import job_id


def test_each_uploads_announcement_says_which_upload_of_the_key_it_is(
    engine: Any, clip: Any, webhook: Any
) -> None:
    s3, sfn = engine.client("s3"), engine.client("stepfunctions")
    ep = engine.endpoints
    key = "uploads/review-stale.mp4"
    jobs = []
    # GIVEN a 20 s upload, replaced 1 s later by a 0.5 s one (versioning Enabled)
    for name in ("long_gop", "half_second"):
        s3.upload_file(str(clip(name)), ep.ingest_bucket, key)
        head = s3.head_object(Bucket=ep.ingest_bucket, Key=key)
        jobs.append((job_id(ep.ingest_bucket, key, head["ETag"]), head["VersionId"]))
        time.sleep(1)
    arn = ep.state_machine_arn.replace(":stateMachine:", ":execution:")
    for job, _ in jobs:
        assert _wait(sfn, f"{arn}:{job}")["status"] == "SUCCEEDED"
    deadline, events = time.monotonic() + 60, []
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        events = [
            e
            for e in webhook.events()
            if e["detail-type"] == "Job Published" and e["detail"]["source"]["key"] == key
        ]
    # (the superseded, longer upload usually publishes last)
    # THEN each announcement says which upload of the key it is, so a subscriber that
    # keeps the newest upload's asset ends on the current one, whatever order they came in
    newest = max(events, key=lambda e: e["detail"]["source"]["uploaded_at"] or "")
    assert newest["detail"]["job_id"] == jobs[-1][0], [e["detail"]["source"] for e in events]
    assert {e["detail"]["source"]["version_id"] for e in events} == {v for _, v in jobs}
