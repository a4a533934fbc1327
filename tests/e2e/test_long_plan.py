"""A plan of hundreds of chunks runs through the Distributed Map with small state payloads."""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import av

from tests.stack import vidflow_up
from workflow.local.binaries import ffmpeg_binary

SECONDS = 240
# Second k of the video is one shade of grey, its luma (limited range) this: neighbours
# differ by 37 or 163, so a thumbnail from the wrong second shows.
SHADE = "16+200*(floor(N/4)*37/200-floor(floor(N/4)*37/200))"


def _shade(second: int) -> int:
    return 16 + second * 37 % 200


def _tiny_long_source(path: Path) -> Path:
    """240 s at 64x36, one keyframe a second, each second a shade: cheap to encode,
    long to plan."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i",
         f"nullsrc=size=64x36:rate=4:duration={SECONDS},geq=lum='{SHADE}':cb=128:cr=128",
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


def _luma(body: bytes) -> int:
    """A grey JPEG's luma on the limited range the source's shades are given in."""
    with av.open(io.BytesIO(body)) as container:
        frame = next(container.decode(video=0))
        return round(float(frame.to_ndarray(format="gray").mean()) * 219 / 255 + 16)


def test_hundreds_of_chunks_keep_state_payloads_small(tmp_path: Path) -> None:
    # GIVEN a stack that cuts every second into its own chunk, and samples a thumbnail
    # every second: 240 of them, made in three pieces of a sprite sheet each
    with vidflow_up(
        "--parameter", "ChunkSeconds=1", "--parameter", "SegmentSeconds=1",
        "--parameter", "Ladder=36:100", "--parameter", "MapMaxConcurrency=4",
        "--parameter", "ThumbnailSeconds=1",
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
        assert output["plan"]["items"] == SECONDS + 1 + 3  # the audio, the images' pieces
        sizes = _payload_sizes(sfn, execution["executionArn"])
        assert sizes and max(sizes) < 32 * 1024
        manifest_key = output["published"]["manifest_key"]
        manifest = json.loads(
            s3.get_object(Bucket=ready["output_bucket"], Key=manifest_key)["Body"].read()
        )
        assert manifest["renditions"][0]["segments"] == SECONDS
        # AND the images of all three pieces are published under the first's account:
        # every thumbnail from its own second, three sheets, a cue for each thumbnail
        images = manifest["images"]
        assert images["thumbnails"]["count"] == SECONDS
        assert images["sprites"] == {**images["sprites"], "count": 3, "columns": 10, "rows": 10}
        prefix = manifest_key.rpartition("/")[0] + "/images/"
        listed = stack.client("s3").get_paginator("list_objects_v2")
        keys = [
            o["Key"][len(prefix) :]
            for page in listed.paginate(Bucket=ready["output_bucket"], Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        assert sorted(k for k in keys if k.startswith("thumbnails/")) == [
            f"thumbnails/{k:05d}.jpg" for k in range(SECONDS)
        ]
        assert sorted(k for k in keys if k.startswith("sprites/")) == [
            f"sprites/{k:03d}.jpg" for k in range(3)
        ]

        def body(name: str) -> bytes:
            got = s3.get_object(Bucket=ready["output_bucket"], Key=prefix + name)
            return bytes(got["Body"].read())

        shades = [_luma(body(f"thumbnails/{k:05d}.jpg")) for k in range(SECONDS)]
        off = [(k, shade) for k, shade in enumerate(shades) if abs(shade - _shade(k)) > 4]
        assert not off, f"thumbnails not from their own second (second, luma): {off[:5]}"
        cues = re.findall(r"(sprites/\d{3}\.jpg)#xywh=", body("thumbnails.vtt").decode())
        assert len(cues) == SECONDS
        assert cues[99:101] == ["sprites/000.jpg", "sprites/001.jpg"]
        assert cues[-1] == "sprites/002.jpg"
