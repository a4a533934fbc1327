"""A running work item says how far it is, through S3, and a job's progress counts it."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from workflow.cli.billing import VodBilling
from workflow.cli.monitor import Monitor
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket
from workflow.vod.chunk import transcode_chunk
from workflow.vod.jobs import JobPaths, execution_arn


def test_a_running_chunk_says_how_far_it_is_and_the_job_counts_it(
    engine: Any, run_job: Any, clip: Any, tmp_path: Path
) -> None:
    # GIVEN a job of four chunks (30 s on the session's Map of two), audio and images,
    # run through the local stack
    run = run_job(clip("h264_aac_2gop"), key="uploads/progress.mp4")
    assert run.status == "SUCCEEDED"
    endpoints, s3, sfn = engine.endpoints, engine.client("s3"), engine.client("stepfunctions")
    paths, output = JobPaths(run.job_id), Bucket(s3, endpoints.output_bucket)
    output.delete_prefix(paths.progress_prefix)
    started = sfn.describe_execution(
        executionArn=execution_arn(endpoints.state_machine_arn, run.job_id)
    )
    items = output.get_json(paths.items_key)
    # (its Map items come longest first, so a short one never holds a chunk back)
    assert [i["kind"] for i in items] == ["images", *["video"] * 4, "audio"]
    item = next(i for i in items if i.get("chunk", {}).get("index") == 1)
    event = {"job_id": run.job_id, "source": json.loads(started["input"])["source"], "item": item}
    # WHEN its second chunk is encoded again, on a clock that makes every report due
    ticks = itertools.count(0.0, 10.0)
    clients = Clients(s3=s3, clock=lambda: float(next(ticks)))
    transcode_chunk(event, Settings(output_bucket=endpoints.output_bucket), clients, lambda: 900.0)
    # THEN it wrote how far its encode was
    record = output.get_json(paths.progress_key("video-00001"))
    assert record["item"] == "video-00001" and 0 < record["fraction"] <= 1
    # AND while the chunk has no result, the job's progress counts that part of it
    s3.delete_object(Bucket=endpoints.output_bucket, Key=paths.result_key("video-00001"))
    monitor = Monitor(sfn, s3, engine.stack.name, endpoints.output_bucket,
                      VodBilling.from_stack(engine.stack))  # fmt: skip
    progress = monitor.progress(run.job_id)
    assert "video-00001" not in progress.done
    assert progress.running["video-00001"] == record["fraction"]
    assert replace(progress, running={}).fraction < progress.fraction < 1
