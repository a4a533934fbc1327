"""Every event at least once, every asset exactly once; new content never harms old."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_reupload_with_new_content_is_a_new_version_beside_the_old(
    engine: Any, clip: Any, run_job: Any
) -> None:
    # GIVEN a published asset for uploads/game.mp4
    first = run_job(clip("half_second"), key="uploads/game.mp4")
    before = _digests(first.out)
    # WHEN different content is uploaded under the same key
    second = run_job(clip("rotated_90"), key="uploads/game.mp4")
    # THEN it is a new job with its own asset, and the first asset is untouched in S3
    assert second.status == "SUCCEEDED" and second.job_id != first.job_id
    assert not set(first.output_keys) & set(second.output_keys)
    s3 = engine.client("s3")
    for key in first.output_keys:
        relative = key.split("/", 2)[2]
        body = s3.get_object(Bucket=engine.endpoints.output_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == before[relative], key


def test_rerunning_a_task_rewrites_the_same_keys(engine: Any, clip: Any, run_job: Any) -> None:
    # GIVEN a finished job
    run = run_job(clip("half_second"), key="uploads/rerun.mp4")
    s3 = engine.client("s3")
    bucket = engine.endpoints.output_bucket
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{run.job_id}/")
    before = sorted(o["Key"] for o in listing["Contents"])
    # WHEN the chunk task is delivered again (as a retry or a duplicate would)
    items = json.loads(
        s3.get_object(Bucket=bucket, Key=f"jobs/{run.job_id}/items.json")["Body"].read()
    )
    chunk = next(i for i in items if i["kind"] == "video")
    event = {"job_id": run.job_id, "source": {"bucket": engine.endpoints.ingest_bucket,
             "key": "uploads/rerun.mp4"}, "item": chunk}  # fmt: skip
    result, error = engine.invoke("TranscodeChunkFunction", event)
    # THEN it succeeds and writes the same keys, no new ones
    assert error is None and result["item"] == "video-00000"
    after = sorted(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{run.job_id}/")["Contents"]
    )
    assert after == before
    outputs = s3.list_objects_v2(Bucket=bucket, Prefix=f"outputs/{run.job_id}/")
    assert sorted(o["Key"] for o in outputs["Contents"]) == sorted(run.output_keys)


def test_duplicate_events_in_a_burst_start_one_execution(
    engine: Any, clip: Any, run_job: Any
) -> None:
    run = run_job(clip("half_second"), key="uploads/burst.mp4")
    head = engine.client("s3").head_object(
        Bucket=engine.endpoints.ingest_bucket, Key="uploads/burst.mp4"
    )
    obj = {
        "key": "uploads/burst.mp4",
        "eTag": head["ETag"].strip('"'),
        "size": head["ContentLength"],
    }
    record = {"s3": {"bucket": {"name": engine.endpoints.ingest_bucket}, "object": obj}}
    results = [engine.invoke("StartJobFunction", {"Records": [record]}) for _ in range(10)]
    assert all(error is None for _, error in results)
    assert all(
        r["jobs"][0] == {"job_id": run.job_id, "key": "uploads/burst.mp4", "started": False}
        for r, _ in results
    )
    sfn = engine.client("stepfunctions")
    names = [
        e["name"]
        for e in sfn.list_executions(stateMachineArn=engine.endpoints.state_machine_arn)[
            "executions"
        ]
    ]
    assert names.count(run.job_id) == 1
