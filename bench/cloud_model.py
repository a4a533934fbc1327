"""A cloud model of the VOD pipeline: time to publish and cost on Lambda, from measurements.

It reads the newest ``bench/results/vod_local-*.json`` (``make bench``) for what was
measured on this machine: CPU-seconds per source second for the whole ladder, and the
output bytes per source second. Everything else is an assumption, stated below with
its source, and printed with the results. For 1 min, 10 min, 1 h and 3 h of 1080p, at
several chunk lengths and memory sizes (1,769 MB: one vCPU, the cheapest per CPU-second,
as ``x264_presets.py`` found), it models the critical path:

    probe (the container's index, or its head and tail, through ranged GETs)
    -> plan
    -> the Map: every work item in Plan's order, MapMaxConcurrency at once whatever
       its kind, each started as a slot frees: the images' pieces (a sprite sheet of
       thumbnails each: their part of the source read, its keyframes decoded), the
       chunks (each a cold start, its part of the source read, its encode on the
       function's vCPUs, its segments written), the audio's pieces (AUDIO_PIECE_S each,
       plus the pre-roll: their part of the source read, AAC encoded)
    -> publish

It is a model, not a measurement: no AWS account is used. Its point is to show which
step bounds time to publish, and what each configuration costs per source minute.
"""

from __future__ import annotations

import argparse
import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow import prices
from workflow.cli.billing import VodBilling
from workflow.local.template import Stack
from workflow.media.audio_pieces import PREROLL_SECONDS
from workflow.media.chunks import FrameIndex, plan_chunks
from workflow.media.images import image_pieces, thumbnail_count

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# Assumptions, each with where it comes from.
ASSUMPTIONS: dict[str, tuple[Any, str]] = {
    "mb_per_vcpu": (1769, "Lambda docs: one vCPU per 1,769 MB of memory, 6 vCPU at 10,240 MB"),
    **{
        name: (price.usd, price.source)
        for name, price in (
            ("lambda_gb_second_usd", prices.LAMBDA_GB_SECOND),
            ("lambda_request_usd", prices.LAMBDA_REQUEST),
            ("transition_usd", prices.STANDARD_TRANSITION),
        )
    },
    "cold_start_s": (1.5, "assumed: Python 3.12 runtime with a 180 MB layer (ffmpeg)"),
    "s3_read_mb_s": (
        90.0,
        "assumed: one function's sequential S3 GET throughput, 70-100 MB/s commonly measured",
    ),
    "s3_write_mb_s": (60.0, "assumed: one function's S3 PUT throughput with 8 uploads at once"),
    "s3_get_latency_s": (0.03, "assumed: first byte of one ranged S3 GET from Lambda"),
    "probe_per_hour": (
        (25.4, 98, 4.9),
        "used only without a bench/results/probe_reads-*.json: the most any container cost "
        "the probe for an hour (MB read, ranged GETs, seconds), 2026-11-30 on this machine",
    ),
    "map_child_start_s": (0.02, "assumed: Distributed Map starts children at ~50 per second"),
    "state_overhead_s": (0.1, "assumed: per Lambda task state, invoke and transition"),
    "x264_efficiency_6vcpu": (
        0.8,
        "assumed: x264 threads scale to 80 % on 6 vCPU (2 vCPU measured here at 98 %)",
    ),
    "cpu_speed_vs_here": (1.0, "assumed: a Lambda vCPU as fast as one core of this machine"),
    "aac_cpu_per_source_s": (
        0.05,
        "used only when the vod_local run predates its own AAC measurement (vod_local.py "
        "now times the audio item's ffmpeg alone: 0.014 on this machine)",
    ),
    "upload_mbit_s": (10.0, "assumed: a typical 1080p upload (camera or encoder file)"),
    "images_cpu_per_source_s": (
        0.032,
        "measured 2026-12-03 on this machine: one images run (keyframes decoded) over the "
        "bench's 60 s 1080p source took 1.9 CPU-s; it scales with the source's keyframes",
    ),
    "plan_publish_gb_s": (3.0, "assumed: Plan and Publish together, at their 1 GB each"),
}


# The template's defaults: AudioPieceSeconds, SegmentSeconds, ThumbnailSeconds and
# MapMaxConcurrency, read from it so that the model follows a change.
_DEFAULTS = Stack(BENCH.parent).parameters
AUDIO_PIECE_S = float(_DEFAULTS["AudioPieceSeconds"])
SEGMENT_S = float(_DEFAULTS["SegmentSeconds"])
THUMBNAIL_S = float(_DEFAULTS["ThumbnailSeconds"])
MAP_MAX_CONCURRENCY = int(_DEFAULTS["MapMaxConcurrency"])


def a(name: str) -> float:
    return float(ASSUMPTIONS[name][0])


# What probing costs: for each of MB read, ranged GETs and seconds, the cost at zero
# length and per hour of video, per container.
ProbeCost = dict[str, list[tuple[float, float]]]


@dataclass(frozen=True)
class Measured:
    cpu_per_source_second: float
    output_mb_per_source_second: float
    aac_cpu_per_source_second: float
    source: str
    probe: ProbeCost
    # The x264 preset the CPU figure was measured with (bench/x264_presets.py has the
    # others): the cost below holds for that preset only.
    preset: str = ""

    def probe_at(self, duration_s: float) -> tuple[float, float, float]:
        """MB read, GETs and seconds of probing ``duration_s`` of video: the worst container
        on each count."""
        hours = duration_s / 3600
        read, gets, seconds = (
            max(line[i][0] + line[i][1] * hours for line in self.probe.values()) for i in range(3)
        )
        return read, gets, seconds


def probe_cost() -> ProbeCost:
    """The probe's cost per container, a line through the newest ``probe_reads.py`` runs of
    the shortest and the longest length (the head, tail and first frames cost the same at
    any length; an index grows with it); through zero from one run alone, which bounds the
    cost above; from the assumption without any."""
    newest: dict[int, Any] = {}
    for run in sorted(RESULTS.glob("probe_reads-*.json")):
        data = json.loads(run.read_text())
        newest[data["minutes"]] = data["results"]
    if not newest:
        assumed: tuple[float, float, float] = ASSUMPTIONS["probe_per_hour"][0]
        return {"any": [(0.0, x) for x in assumed]}
    short, long = min(newest), max(newest)
    cost: ProbeCost = {}
    for container, at_long in newest[long].items():
        at_short = newest[short].get(container, at_long) if short != long else None
        cost[container] = []
        for key, scale in (("read_bytes", 1e-6), ("requests", 1.0), ("probe_seconds", 1.0)):
            y1 = at_long[key] * scale
            if at_short is None:
                cost[container].append((0.0, y1 / (long / 60)))
            else:
                y0 = at_short[key] * scale
                slope = max(0.0, (y1 - y0) / ((long - short) / 60))
                cost[container].append((max(0.0, y0 - slope * short / 60), slope))
    return cost


def measured() -> Measured:
    runs = sorted(RESULTS.glob("vod_local-*.json"))
    if not runs:
        raise SystemExit("no bench/results/vod_local-*.json: run make bench (vod_local.py) first")
    data = json.loads(runs[-1].read_text())
    seconds = float(data["source"]["seconds"])
    cpu = float(data["vidflow"]["usage"]["cpu_s"])
    output = sum(r["bytes"] for r in data["vidflow"]["rungs"]) / 1e6
    aac = data.get("aac", {}).get("cpu_per_source_second", a("aac_cpu_per_source_s"))
    preset = str(data.get("settings", {}).get("preset", ""))
    return Measured(
        cpu / seconds, output / seconds, float(aac), runs[-1].name, probe_cost(), preset
    )


def vcpus(memory_mb: int) -> float:
    return min(6.0, memory_mb / a("mb_per_vcpu"))


def efficiency(cpus: float) -> float:
    """x264's parallel efficiency: 98 % at 2 (measured), the assumption at 6, linear between."""
    return 0.98 + (a("x264_efficiency_6vcpu") - 0.98) * max(0.0, min(1.0, (cpus - 2) / 4))


def map_ends(walls: list[float], slots: int) -> list[float]:
    """When each of the Map's items ends: started in the order Plan lists them, each as a
    slot frees (``slots`` is its MaxConcurrency, which every kind of item shares), and no
    sooner than the Map starts children."""
    free = [0.0] * min(slots, len(walls))
    ends = []
    for n, wall in enumerate(walls):
        start = max(heapq.heappop(free), (n + 1) * a("map_child_start_s"))
        ends.append(start + wall)
        heapq.heappush(free, ends[-1])
    return ends


def model(
    duration_s: float,
    chunk_s: float,
    memory_mb: int,
    concurrency: int,
    m: Measured,
    billing: VodBilling,
) -> dict[str, float]:
    source_mb = duration_s * a("upload_mbit_s") / 8
    # Plan's chunks: every chunk_s, or shorter where that fills the Map's last wave.
    planned = plan_chunks(FrameIndex(0.0, duration_s), chunk_s, SEGMENT_S, slots=concurrency)
    chunks = len(planned)
    cpus = vcpus(memory_mb)
    read_mb, gets, cpu_s = m.probe_at(duration_s)
    probe = a("cold_start_s") + gets * a("s3_get_latency_s") + read_mb / a("s3_read_mb_s") + cpu_s

    def wall_of(seconds: float) -> float:
        """A chunk job's wall time: cold start, the read or the encode, the write."""
        speed = cpus * efficiency(cpus) * a("cpu_speed_vs_here")
        encode = m.cpu_per_source_second * seconds / speed
        read = source_mb * seconds / duration_s / a("s3_read_mb_s")
        write = m.output_mb_per_source_second * seconds / a("s3_write_mb_s")
        return a("cold_start_s") + max(encode, read) + write + a("state_overhead_s")

    # A file under one and a half pieces is one piece (and has no pre-roll).
    pieces = max(1, round(duration_s / AUDIO_PIECE_S))
    piece_s = duration_s / pieces + (PREROLL_SECONDS if pieces > 1 else 0.0)
    audio_wall = (
        a("cold_start_s")
        + max(
            source_mb * piece_s / duration_s / a("s3_read_mb_s"),
            piece_s * m.aac_cpu_per_source_second,
        )
        + a("state_overhead_s")
    )
    sheets = image_pieces(thumbnail_count(duration_s, THUMBNAIL_S))
    # Keyframes alone keep about one CPU busy: the images run over the bench's source used
    # 0.8 of this machine's two.
    images_cpus = min(1.0, vcpus(billing.branch("images").memory_mb))

    def images_wall(ticks: int) -> float:
        """An images piece's wall time: cold start, the read or the keyframes' decode."""
        seconds = min(duration_s, ticks * THUMBNAIL_S)
        read = source_mb * seconds / duration_s / a("s3_read_mb_s")
        decode = seconds * a("images_cpu_per_source_s") / images_cpus
        return a("cold_start_s") + max(read, decode) + a("state_overhead_s")

    # One Map runs every item, in Plan's order (the images' pieces, the chunks, the audio's
    # pieces) and MapMaxConcurrency at once: the images and audio take slots the chunks
    # would otherwise have. Where the chunks alone fill the slots, some wait for a second
    # wave.
    walls = {
        "images": [images_wall(ticks) for _, ticks in sheets],
        "video": [wall_of(c.duration) for c in planned],
        "audio": [audio_wall] * pieces,
    }
    ends = map_ends([w for kind in walls.values() for w in kind], concurrency)
    last: dict[str, float] = {}
    for kind, kind_walls in walls.items():
        last[kind], ends = max(ends[: len(kind_walls)]), ends[len(kind_walls) :]
    chunk_wall = max(walls["video"])
    video, audio, images = last["video"], last["audio"], last["images"]
    total = probe + 3 * a("state_overhead_s") + max(last.values()) + a("state_overhead_s")
    items = [
        *(f"video-{n:05d}" for n in range(chunks)),
        *(f"audio-{n:05d}" for n in range(pieces)),
        *("images" for _ in sheets),
    ]
    gb_seconds = (
        chunks * wall_of(duration_s / chunks) * memory_mb / 1024
        + pieces * audio_wall * billing.branch("audio").memory_mb / 1024
        + sum(images_wall(t) for _, t in sheets) * billing.branch("images").memory_mb / 1024
        + probe * billing.task_memory["Probe"] / 1024
        + a("plan_publish_gb_s")
    )
    cost = (
        gb_seconds * a("lambda_gb_second_usd")
        + billing.lambda_requests(items) * a("lambda_request_usd")
        + billing.state_transitions(items) * a("transition_usd")
    )
    return {
        "publish_s": total,
        "probe_s": probe,
        "video_s": video,
        "audio_s": audio,
        "images_s": images,
        "chunk_wall_s": chunk_wall,
        "usd_per_source_minute": cost / (duration_s / 60),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrency",
        type=int,
        default=MAP_MAX_CONCURRENCY,
        help=f"MapMaxConcurrency (the template's default, {MAP_MAX_CONCURRENCY})",
    )
    args = parser.parse_args()
    m = measured()
    # Memory, Lambda calls and state transitions as the template's VOD machine runs a job.
    billing = VodBilling.from_stack(Stack(BENCH.parent))
    print(f"cloud model from {m.source}: {m.cpu_per_source_second:.2f} CPU-s (ladder, x264 "
          f"{m.preset or 'preset not recorded'}), "
          f"{m.aac_cpu_per_source_second:.3f} CPU-s (AAC) and "
          f"{m.output_mb_per_source_second:.2f} MB of output per source second")  # fmt: skip
    print("assumptions:")
    for name, (value, why) in ASSUMPTIONS.items():
        print(f"  {name} = {value}: {why}")
    print(f"\n{'input':>6} {'chunk':>6} {'memory':>7} | {'publish':>8} {'probe':>6} "
          f"{'video':>6} {'audio':>6} {'images':>6} | {'$/src min':>9}")  # fmt: skip
    rows = []
    for minutes in (1, 10, 60, 180):
        for chunk in (6, 12, 24):
            for memory in (1769, 3008, 5308, 10240):
                r = model(minutes * 60, chunk, memory, args.concurrency, m, billing)
                rows.append({"minutes": minutes, "chunk_s": chunk, "memory_mb": memory, **r})
                print(f"{minutes:>4} m {chunk:>5}s {memory:>6}M | {r['publish_s']:>7.1f}s "
                      f"{r['probe_s']:>5.1f}s {r['video_s']:>5.1f}s {r['audio_s']:>5.1f}s "
                      f"{r['images_s']:>5.1f}s | "
                      f"{r['usd_per_source_minute']:>9.5f}")  # fmt: skip
    out = RESULTS / "cloud_model-latest.json"
    out.write_text(
        json.dumps({"measured": m.__dict__, "assumptions": ASSUMPTIONS, "rows": rows}, indent=1)
    )
    print(f"written to {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
