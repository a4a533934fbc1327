"""Twenty uploads at once on one local stack: all complete, each exactly once."""

from __future__ import annotations

import json
import resource
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workflow.vod.jobs import job_id

UPLOADS = 20


def test_twenty_uploads_at_once_all_publish_once(engine: Any, clip: Any) -> None:
    # GIVEN twenty short videos uploaded together (by eight concurrent clients)
    s3, sfn = engine.client("s3"), engine.client("stepfunctions")
    ep = engine.endpoints
    sources = [clip("half_second"), clip("rotated_90")]
    keys = [f"uploads/load/{n:02d}.mp4" for n in range(UPLOADS)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda n: s3.upload_file(str(sources[n % 2]), ep.ingest_bucket, keys[n]),
                range(UPLOADS),
            )
        )
    jobs = {
        job_id(ep.ingest_bucket, key, s3.head_object(Bucket=ep.ingest_bucket, Key=key)["ETag"])
        for key in keys
    }
    # WHEN the stack works through them
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        listed = sfn.list_executions(stateMachineArn=ep.state_machine_arn)["executions"]
        ours = [e for e in listed if e["name"] in jobs]
        if len(ours) >= UPLOADS and all(e["status"] != "RUNNING" for e in ours):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - began
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # THEN every upload has exactly one execution, which succeeded, and one master playlist
    counts = Counter(e["name"] for e in ours)
    assert set(counts) == jobs and set(counts.values()) == {1}
    failed = [e["name"] for e in ours if e["status"] != "SUCCEEDED"]
    failures = [
        json.loads(
            s3.get_object(Bucket=ep.output_bucket, Key=f"failures/{job}.json")["Body"].read()
        )
        for job in failed
    ]
    assert not failed, failures
    for job in jobs:
        s3.head_object(Bucket=ep.output_bucket, Key=f"outputs/{job}/master.m3u8")
    # and memory stays bounded (the in-process stack holds every upload and output)
    assert peak_mib < 3 * 1024
    print(
        f"\nload: {UPLOADS} uploads in {elapsed:.1f} s ({UPLOADS / elapsed * 60:.0f} jobs/min), "
        f"peak RSS {peak_mib:.0f} MiB (was {rss_before / 1024:.0f} MiB before)"
    )
