"""Clip benchmark: a clip of a live stream against re-encoding its span.

One run of this script:

1. takes the VOD benchmark's cached 1080p source (generated on first use) and cuts it
   like a venue encoder into 720p MPEG-TS segments of 4 s;
2. starts the local stack in this process, pushes the segments, and waits until every
   rung's live playlist shows them (the stream stays live: no END);
3. asks for a clip of ``--length`` seconds from ``--start`` (mid-segment at both ends by
   default) and times it from the request's upload to the execution's success;
4. times ONE ffmpeg re-encoding the same span of the same segments into the same ladder
   and audio (what a clip would cost without copying): the baseline;
5. prints both and their ratio, and writes them as JSON to ``bench/results/clip-<timestamp>.json``.

Nothing is asserted: the numbers are reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, so its own folder is on the path: the VOD benchmark's source is shared.
from vod_local import make_source, template_defaults

from workflow.cli import venue
from workflow.live.paths import ClipPaths, StreamPaths, clip_execution_name
from workflow.local.binaries import ffmpeg_binary
from workflow.local.engine import LocalEngine
from workflow.media import encode, runner
from workflow.media.chunks import Chunk
from workflow.media.ladder import build_ladder
from workflow.media.probe import probe
from workflow.settings import Limits

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SEGMENT_SECONDS = 4.0
log = logging.getLogger("bench.clip")


def run_clip(segments: list[Path], start: float, end: float) -> dict[str, Any]:
    """Push the segments to a local stack, then time a clip of ``[start, end)``."""
    engine = LocalEngine(ROOT, log_file=Path(tempfile.gettempdir()) / "vidflow-bench-clip.log")
    endpoints = engine.start()
    try:
        s3, sfn = engine.client("s3"), engine.client("stepfunctions")
        for sequence, segment in enumerate(segments):
            s3.upload_file(str(segment), endpoints.ingest_bucket, f"live/bench/{sequence}.ts")
        playlist = StreamPaths("bench").live_playlist_key("audio")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                text = s3.get_object(Bucket=endpoints.output_bucket, Key=playlist)["Body"].read()
            except s3.exceptions.NoSuchKey:
                text = b""
            if text.count(b"#EXTINF") == len(segments):
                break
            time.sleep(0.5)
        clip = ClipPaths("bench", "bench")
        body = json.dumps({"from": start, "to": end}).encode()
        began = time.monotonic()
        put = s3.put_object(Bucket=endpoints.ingest_bucket, Key=clip.request_key, Body=body)
        arn = (
            endpoints.clip_state_machine_arn.replace(":stateMachine:", ":execution:")
            + ":"
            + clip_execution_name(clip, put["ETag"], put.get("VersionId"))
        )
        while True:
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                described = {"status": "PENDING"}
            if described["status"] not in ("PENDING", "RUNNING"):
                break
            time.sleep(0.1)
        wall = time.monotonic() - began
        if described["status"] != "SUCCEEDED":
            raise RuntimeError(
                f"the clip failed: {described.get('error')}: {described.get('cause')}"
            )
        return {"wall_s": round(wall, 3), "result": json.loads(described["output"])}
    finally:
        engine.stop()


def run_baseline(segments: list[Path], start: float, end: float, work: Path) -> dict[str, Any]:
    """One ffmpeg re-encoding ``[start, end)`` of the joined segments into the ladder, and
    the audio: the span encoded again rather than copied."""
    joined = work / "joined.ts"
    joined.write_bytes(b"".join(s.read_bytes() for s in segments))
    facts = probe(
        str(joined), head=joined.read_bytes()[:65536], size=joined.stat().st_size, limits=Limits()
    ).facts
    defaults = template_defaults()
    ladder = build_ladder(
        facts.display_width, facts.display_height, facts.frame_rate, defaults.ladder
    )
    origin = facts.start_time
    first, last = origin + start, origin + end
    cuts = [first + n * SEGMENT_SECONDS for n in range(int((end - start) // SEGMENT_SECONDS) + 1)]
    chunk = Chunk(0, first, last, 0, [t for t in cuts if t < last], margin=first - origin)
    for rung in ladder:
        (work / rung.name).mkdir()
    video = encode.build_chunk_command(
        str(joined), "mpegts", facts.container_start, chunk, ladder, work,
        binary=ffmpeg_binary(), preset=defaults.preset,
    )  # fmt: skip
    audio = encode.build_audio_command(
        str(joined), "mpegts", first, last - first, work, kbps=defaults.audio_kbps,
        segment_seconds=SEGMENT_SECONDS, binary=ffmpeg_binary(),
    )  # fmt: skip
    (work / "audio").mkdir()
    began = time.monotonic()
    runner.run_ffmpeg(video, timeout=3600)
    runner.run_ffmpeg(audio, timeout=3600)
    return {"wall_s": round(time.monotonic() - began, 3), "rungs": [r.name for r in ladder]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=40, help="length of the stream (40)")
    parser.add_argument("--start", type=float, default=5.3, help="clip start, stream time (5.3)")
    parser.add_argument("--length", type=float, default=22.5, help="clip length, s (22.5)")
    parser.add_argument("--height", type=int, default=720, help="the venue's picture height")
    args = parser.parse_args()
    if not 0 <= args.start < args.start + args.length <= args.seconds:
        parser.error("the clip must lie inside the stream")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    for noisy in ("vidflow", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    source = make_source(ffmpeg_binary(), max(args.seconds, 30))
    end = args.start + args.length
    with tempfile.TemporaryDirectory(prefix="vidflow-bench-clip-") as scratch:
        work = Path(scratch)
        log.info("cutting %s into %g s segments at %dp", source.name, SEGMENT_SECONDS, args.height)
        segments = venue.cut_segments(
            source, work / "venue", SEGMENT_SECONDS, binary=ffmpeg_binary(), height=args.height
        )[: round(args.seconds / SEGMENT_SECONDS)]
        log.info("baseline: one ffmpeg re-encoding %.1f-%.1f s into the ladder", args.start, end)
        (work / "baseline").mkdir()
        baseline = run_baseline(segments, args.start, end, work / "baseline")
        log.info("vidflow: pushing %d segments, then the clip", len(segments))
        clip = run_clip(segments, args.start, end)
    ratio = clip["wall_s"] / baseline["wall_s"]
    print(
        f"clip {args.start:g}-{end:g} s of a {args.seconds} s {args.height}p stream: vidflow "
        f"{clip['wall_s']:.2f} s ({clip['result']['recut']} of {clip['result']['segments']} "
        f"segments re-encoded), one ffmpeg re-encoding the span {baseline['wall_s']:.2f} s: "
        f"ratio {ratio:.2f}"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"clip-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "clip",
                "timestamp": stamp,
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "settings": vars(args),
                "vidflow": clip,
                "baseline": baseline,
                "ratio": round(ratio, 3),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"results in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
