"""A plan of hundreds of chunks runs through the Distributed Map with small state payloads."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.stack import vidflow_up
from workflow.local.binaries import ffmpeg_binary

SECONDS = 240


def _tiny_long_source(path: Path) -> Path:
    """240 s at 64x36, one keyframe a second: cheap to encode, long to plan."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=64x36:rate=4:duration={SECONDS}",
         "-f", "lavfi", "-i", f"sine=sample_rate=8000:duration={SECONDS}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "4", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _payload_sizes(sfn: Any, arn: str) -> list[int]:
    sizes = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            for key, details in event.items():
                if key.endswith("EventDetails") and isinstance(details, dict):
                    for field in ("input", "output", "parameters"):
                        if isinstance(details.get(field), str):
                            sizes.append(len(details[field].encode()))
    return sizes


def test_hundreds_of_chunks_keep_state_payloads_small(tmp_path: Path) -> None:
    # GIVEN a stack that cuts every second into its own chunk
    with vidflow_up(
        "--parameter", "ChunkSeconds=1", "--parameter", "SegmentSeconds=1",
        "--parameter", "Ladder=36:100", "--parameter", "MapMaxConcurrency=4",
    ) as stack:  # fmt: skip
        ready = stack.ready
        s3, sfn = stack.client("s3"), stack.client("stepfunctions")
        # WHEN a 4-minute video is uploaded
        source = _tiny_long_source(tmp_path / "long.mp4")
        s3.upload_file(str(source), ready["ingest_bucket"], "uploads/long.mp4")
        deadline = time.monotonic() + 900
        execution: dict[str, Any] = {}
        while time.monotonic() < deadline:
            listed = sfn.list_executions(stateMachineArn=ready["state_machine_arn"])["executions"]
            if listed and listed[0]["status"] != "RUNNING":
                execution = listed[0]
                break
            time.sleep(1)
        # THEN every chunk went through the Map, and no state carried more than 32 KiB
        assert execution.get("status") == "SUCCEEDED"
        output = json.loads(
            sfn.describe_execution(executionArn=execution["executionArn"])["output"]
        )
        # One chunk a second: 240 fill every wave of the Map's four (in 239 the last
        # chunk would take the final two seconds and leave three of its slots idle).
        assert output["plan"]["chunks"] == SECONDS
        assert output["plan"]["items"] == SECONDS + 2  # and the audio and the images
        sizes = _payload_sizes(sfn, execution["executionArn"])
        assert sizes and max(sizes) < 32 * 1024
        manifest_key = output["published"]["manifest_key"]
        manifest = json.loads(
            s3.get_object(Bucket=ready["output_bucket"], Key=manifest_key)["Body"].read()
        )
        assert manifest["renditions"][0]["segments"] == SECONDS
