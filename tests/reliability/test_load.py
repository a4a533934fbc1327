"""Twenty uploads at once on one local stack: all complete, each exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.stack import vidflow_up
from workflow.vod.jobs import job_id

UPLOADS = 20


def test_twenty_uploads_at_once_all_publish_once(clip: Any) -> None:
    # GIVEN a stack of its own, as `vidflow up` starts one (the session's has run the
    # other suites' jobs), and twenty short videos uploaded together by eight clients
    with vidflow_up() as stack:
        s3, sfn, ready = stack.client("s3"), stack.client("stepfunctions"), stack.ready
        sources = [clip("half_second"), clip("rotated_90")]
        keys = [f"uploads/load/{n:02d}.mp4" for n in range(UPLOADS)]
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda n: s3.upload_file(str(sources[n % 2]), ready["ingest_bucket"], keys[n]),
                    range(UPLOADS),
                )
            )
        jobs = {
            job_id(ready["ingest_bucket"], key,
                   s3.head_object(Bucket=ready["ingest_bucket"], Key=key)["ETag"])
            for key in keys
        }  # fmt: skip
        # WHEN the stack works through them
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            listed = sfn.list_executions(stateMachineArn=ready["state_machine_arn"])["executions"]
            ours = [e for e in listed if e["name"] in jobs]
            if len(ours) >= UPLOADS and all(e["status"] != "RUNNING" for e in ours):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - began
        # THEN every upload has exactly one execution, which succeeded, and one master
        # playlist; a failed one is named with its error and what the functions logged
        counts = Counter(e["name"] for e in ours)
        assert set(counts) == jobs, f"{len(jobs - set(counts))} uploads started no job"
        assert set(counts.values()) == {1}, counts
        failed = [e for e in ours if e["status"] != "SUCCEEDED"]
        failures = [_failure(s3, sfn, ready["output_bucket"], e) for e in failed]
        errors = [
            line for line in Path(ready["function_log"]).read_text().splitlines()
            if "Error" in line or "Traceback" in line
        ]  # fmt: skip
        assert not failed, (failures, errors[-40:])
        for job in jobs:
            s3.head_object(Bucket=ready["output_bucket"], Key=f"outputs/{job}/master.m3u8")
        # and the stack's memory stays bounded (it holds every upload and output)
        peak_mib = _peak_rss_mib(stack.process.pid)
    assert peak_mib < 3 * 1024
    rate = UPLOADS / elapsed * 60
    print(f"\nload: {UPLOADS} uploads in {elapsed:.1f} s ({rate:.0f} jobs/min), {peak_mib:.0f} MiB")


def _failure(s3: Any, sfn: Any, bucket: str, execution: dict[str, Any]) -> dict[str, Any]:
    """What a failed execution left: its status, its failure record (if it wrote one) and
    the failures its history shows."""
    key = f"failures/{execution['name']}.json"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) if listed else None
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    failed = [
        {"type": event["type"], **details}
        for event in history
        for name, details in event.items()
        if name.endswith("EventDetails") and ("error" in details or "cause" in details)
    ]
    return {"status": execution["status"], "record": record, "history": failed}


def _peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory (Linux's VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")
