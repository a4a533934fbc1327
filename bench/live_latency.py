"""Live benchmark: per-segment latency on the local stack, and a cloud model of it.

One run of this script:

1. takes the VOD benchmark's cached 1080p source (generated on first use) and cuts it
   like a venue encoder into 720p MPEG-TS segments of ``--segment`` seconds;
2. measures, on this machine and outside any stack, what one segment costs to encode
   into the template's ladder (720p and below: never upscaled) two ways: ONE ffmpeg
   for every rung (what vidflow runs) and one ffmpeg per rung, all at once;
3. starts the local stack in this process and pushes the segments in real time, one
   per segment duration, measuring each segment's latency from its upload to its
   presence in every rung's live playlist, and every Lambda call's duration;
4. prints latency p50/p95 as a multiple of the segment duration, and a cloud model
   built from the measured per-task costs plus stated AWS overheads;
5. writes everything as JSON to ``bench/results/live_latency-<timestamp>.json``.

Nothing is asserted: the numbers are reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, so its own folder is on the path: the VOD benchmark's source is shared.
from vod_local import make_source, template_defaults

from workflow.cli import venue
from workflow.local.binaries import ffmpeg_binary
from workflow.local.engine import LocalEngine
from workflow.local.template import load_template
from workflow.media import encode, runner
from workflow.media.chunks import Chunk
from workflow.media.ladder import Rendition, build_ladder
from workflow.media.probe import probe
from workflow.settings import Limits

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

RESULTS = BENCH / "results"
log = logging.getLogger("bench.live")

# AWS overheads the local stack cannot show, stated so the model can be checked.
# S3 event notification to Lambda: typically well under a second (AWS documents
# "typically ... in seconds"; measured medians in the field are ~0.2-0.5 s).
S3_EVENT_SECONDS = 0.5
# Express state transitions and Lambda service invokes of warm functions: ~20-50 ms.
PER_TASK_OVERHEAD_SECONDS = 0.05
# Lambda gives CPU in proportion to memory: one vCPU per 1,769 MB.
MB_PER_VCPU = 1769


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def segment_facts(segment: Path) -> Any:
    return probe(
        str(segment),
        head=segment.read_bytes()[:65536],
        size=segment.stat().st_size,
        limits=Limits(),
    ).facts


def encode_command(segment: Path, rungs: list[Rendition], folder: Path, preset: str) -> list[str]:
    """The command vidflow's transcode step runs for one segment and these rungs."""
    facts = segment_facts(segment)
    start = facts.start_time
    # The whole segment from its start, as LiveTranscode encodes it.
    chunk = Chunk(
        0, start, start + facts.duration, 0, [start], facts.start_time - facts.container_start
    )
    for rung in rungs:
        (folder / rung.name).mkdir(parents=True, exist_ok=True)
    return encode.build_chunk_command(
        str(segment),
        facts.container,
        facts.container_start,
        chunk,
        rungs,
        folder,
        final=True,
        binary=ffmpeg_binary(),
        preset=preset,
    )


def encode_costs(segments: list[Path], work: Path, preset: str, ladder: str) -> dict[str, Any]:
    """Encode segments outside any stack: all rungs in one ffmpeg, and one ffmpeg per rung."""
    facts = segment_facts(segments[0])
    renditions = build_ladder(facts.display_width, facts.display_height, facts.frame_rate, ladder)
    one_job, per_rung = [], []
    for n, segment in enumerate(segments):
        together = encode_command(segment, renditions, work / f"one-{n}", preset)
        apart = [
            encode_command(segment, [r], work / f"rung-{n}-{r.name}", preset) for r in renditions
        ]
        began = time.monotonic()
        runner.run_ffmpeg(together, timeout=600)
        one_job.append(time.monotonic() - began)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(apart)) as pool:
            list(pool.map(lambda job: runner.run_ffmpeg(job, timeout=600), apart))
        per_rung.append(time.monotonic() - began)
    return {
        "rungs": [r.name for r in renditions],
        "one_job_for_all_rungs_s": one_job,
        "one_job_per_rung_in_parallel_s": per_rung,
    }


def run_stack(segments: list[Path], segment_seconds: float) -> dict[str, Any]:
    """Push the segments in real time to a local stack; time everything."""
    engine = LocalEngine(ROOT, log_file=Path(tempfile.gettempdir()) / "vidflow-bench-live.log")
    endpoints = engine.start()
    assert engine.lambdas is not None
    durations: dict[str, list[float]] = defaultdict(list)
    try:
        s3 = engine.client("s3")
        report = venue.push(
            s3,
            ingest_bucket=endpoints.ingest_bucket,
            output_bucket=endpoints.output_bucket,
            stream="bench",
            segments=segments,
            order=list(range(len(segments))),
            segment_seconds=segment_seconds,
            realtime=True,
        )
    finally:
        for timing in engine.lambdas.timings:
            durations[timing.function].append((timing.init_ms + timing.total_ms) / 1000)
        engine.stop()
    return {
        "latency_s": {str(k): round(v, 3) for k, v in sorted(report.latencies.items())},
        "ended": report.ended,
        "gaps": report.gaps,
        "function_seconds": {k: [round(x, 3) for x in v] for k, v in durations.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=40, help="length of the stream (40)")
    parser.add_argument("--segment", type=float, default=4.0, help="segment seconds (4)")
    parser.add_argument("--height", type=int, default=720, help="the venue's picture height")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("vidflow", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    defaults = template_defaults()
    source = make_source(ffmpeg_binary(), max(args.seconds, 30))
    with tempfile.TemporaryDirectory(prefix="vidflow-bench-live-") as scratch:
        work = Path(scratch)
        log.info("cutting %s into %g s segments at %dp", source.name, args.segment, args.height)
        segments = venue.cut_segments(
            source, work / "venue", args.segment, binary=ffmpeg_binary(),
            height=args.height,
        )[: max(1, round(args.seconds / args.segment))]  # fmt: skip
        log.info("encoding %d segments outside the stack (both ways)", len(segments))
        costs = encode_costs(segments, work / "encode", defaults.preset, defaults.ladder)
        log.info("pushing %d segments in real time to the local stack", len(segments))
        stack = run_stack(segments, args.segment)

    latencies = list(stack["latency_s"].values())
    seg = args.segment
    functions = stack["function_seconds"]
    memory = {
        lid: int(props["Properties"].get("MemorySize", 0))
        for lid, props in load_template(ROOT / "sam-template.yaml")["Resources"].items()
        if props["Type"] == "AWS::Serverless::Function"
    }
    local_cpus = os.cpu_count() or 1
    lambda_vcpus = memory["LiveTranscodeFunction"] / MB_PER_VCPU
    encode_p50 = statistics.median(costs["one_job_for_all_rungs_s"])

    def p50(name: str) -> float:
        return float(statistics.median(functions.get(name, [0.0])))

    # The transcode step, minus its encode, is S3 reads and writes: kept as measured.
    transcode_io = max(0.0, p50("LiveTranscodeFunction") - encode_p50)
    cloud_encode = encode_p50 * min(1.0, local_cpus / lambda_vcpus)
    cloud = {
        "s3_event": S3_EVENT_SECONDS,
        "task_overheads": 4 * PER_TASK_OVERHEAD_SECONDS,
        "ingest": p50("LiveIngestFunction"),
        "probe": p50("LiveProbeFunction"),
        "encode": cloud_encode,
        "transcode_io": transcode_io,
        "publish": p50("LivePublishFunction"),
    }
    cloud_p50 = sum(cloud.values())
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": local_cpus, "platform": platform.platform()},
        "segment_seconds": seg,
        "segments": len(segments),
        "height": args.height,
        "encode": costs,
        "stack": stack,
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p95_s": round(percentile(latencies, 95), 3),
        "cloud_model": {
            "assumptions": {
                "s3_event_seconds": S3_EVENT_SECONDS,
                "per_task_overhead_seconds": PER_TASK_OVERHEAD_SECONDS,
                "transcode_memory_mb": memory["LiveTranscodeFunction"],
                "lambda_vcpus": round(lambda_vcpus, 2),
                "encode_scales_with_vcpus_from": local_cpus,
            },
            "parts_s": {k: round(v, 3) for k, v in cloud.items()},
            "p50_s": round(cloud_p50, 3),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"live_latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1))
    one, per = costs["one_job_for_all_rungs_s"], costs["one_job_per_rung_in_parallel_s"]
    print(f"\nlive latency, {len(segments)} x {seg:g} s segments at {args.height}p, "
          f"rungs {', '.join(costs['rungs'])}, {local_cpus} CPUs")  # fmt: skip
    median, p95 = result["latency_p50_s"], result["latency_p95_s"]
    print(f"  local stack   p50 {median:.2f} s = {median / seg:.2f}x segment, p95 {p95:.2f} s"
          f" = {p95 / seg:.2f}x; gaps {stack['gaps'] or 'none'}; "
          f"closed {stack['ended']}")  # fmt: skip
    print(f"  encode only   all rungs in one ffmpeg p50 {statistics.median(one):.2f} s; one ffmpeg"
          f" per rung at once p50 {statistics.median(per):.2f} s"
          f" ({statistics.median(per) / statistics.median(one):.2f}x)")  # fmt: skip
    for name in sorted(functions):
        print(f"  {name:24s} p50 {p50(name):.3f} s over {len(functions[name])} calls")
    print(f"  cloud model   p50 {cloud_p50:.2f} s = {cloud_p50 / seg:.2f}x segment "
          f"({', '.join(f'{k} {v:.2f}' for k, v in cloud.items())})")  # fmt: skip
    print(f"  written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
