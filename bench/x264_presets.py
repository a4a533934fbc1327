"""x264 presets and threads against VMAF and cost: what a chunk's encode costs on Lambda.

One run of this script:

1. takes (or generates once) ``vod_local.py``'s 1080p30 source, ``--seconds`` long
   (12 s by default: one chunk at the template's ``ChunkSeconds``);
2. for every configuration (an x264 preset, or a preset per rung, with optional
   ``-x264-params``) and every ``--threads`` count N, pins one ffmpeg to N cores
   (``taskset``) and runs the command ``workflow.media.encode.build_chunk_command``
   builds for the template's default ladder, with ``-threads N`` per rung: decode once,
   every rung with the same rate control, profile, level and forced keyframes. It
   measures CPU seconds (``os.wait4``), wall seconds and the rest of the machine's load;
3. scores every rung with VMAF against the source scaled to the rung (as ``vod_local.py``
   does) and measures its bitrate;
4. prices each run with ``cloud_model.model``: a 1 h input in 12 s chunks on a
   TranscodeChunk function of N x 1,769 MB (1 vCPU per 1,769 MB) for the measured thread
   counts, and, from the 2-thread CPU figure, at 5,307 MB (3 vCPU) and at the
   template's MemorySize (modelled: this machine has 2 cores);
5. prints a table and writes everything to ``bench/results/x264_presets-<timestamp>.json``.

Nothing is asserted: the numbers are reported, not judged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud_model import MAP_MAX_CONCURRENCY, Measured, model, probe_cost, vcpus
from vod_local import (
    CACHE,
    FPS,
    HEIGHT,
    RESULTS,
    ROOT,
    WIDTH,
    Defaults,
    Usage,
    machine_record,
    make_source,
    measure,
    source_record,
    template_defaults,
)

from workflow.cli.billing import VodBilling
from workflow.local.binaries import ffmpeg_binary
from workflow.local.template import Stack
from workflow.media.chunks import Chunk
from workflow.media.encode import build_chunk_command
from workflow.media.ladder import Rendition, build_ladder

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast")
MB_PER_VCPU = 1769
# Priced as one hour of source in chunks of the template's default length.
PRICED_INPUT_S = 3600
# The template's MapMaxConcurrency, as the deployed Map runs the hour.
MAP_CONCURRENCY = MAP_MAX_CONCURRENCY

log = logging.getLogger("bench.x264_presets")


@dataclass(frozen=True)
class Config:
    """How every rung is encoded: a preset per rung (largest first) and extra x264 params."""

    name: str
    presets: tuple[str, ...]
    params: str = ""
    why: str = ""


@dataclass
class Result:
    config: Config
    threads: int
    usage: Usage
    rungs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def vmaf_mean(self) -> float:
        return sum(float(r["score"]) for r in self.rungs) / len(self.rungs)


def configs(rungs: int) -> list[Config]:
    """Every preset alone, then the variants that trade CPU for quality differently."""
    plain = [Config(p, (p,) * rungs) for p in PRESETS]
    small = rungs - 1
    variants = [
        Config(
            "superfast 1080p, veryfast rest",
            ("superfast",) + ("veryfast",) * small,
            why="the top rung is ~57 % of the pixels: a faster preset there only",
        ),
        Config(
            "veryfast 1080p, superfast rest",
            ("veryfast",) + ("superfast",) * small,
            why="keep the top rung's quality, save on the small ones",
        ),
        Config(
            "superfast+mbtree",
            ("superfast",) * rungs,
            "mbtree=1:rc-lookahead=10",
            why="superfast's analysis with veryfast's rate control (macroblock tree, lookahead)",
        ),
        Config(
            "veryfast me=dia",
            ("veryfast",) * rungs,
            "me=dia",
            why="veryfast with superfast's cheaper motion search only",
        ),
        Config(
            "veryfast rc-lookahead=5",
            ("veryfast",) * rungs,
            "rc-lookahead=5",
            why="a shorter lookahead (veryfast's is 10)",
        ),
    ]
    return plain + variants


def chunk_command(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    out: Path,
    config: Config,
    threads: int,
    seconds: int,
    segment_seconds: float,
) -> list[str]:
    """``build_chunk_command``'s command for one chunk covering the source, per ``config``.

    The chunk function's own command, with each output's ``-preset`` set to its rung's,
    ``-threads`` added after it and ``config.params`` added to its ``-x264-params``: ffmpeg
    options bind to the output they precede, so per-rung presets still make one ffmpeg
    process.
    """
    starts = [float(t) for t in range(0, seconds, int(segment_seconds))]
    chunk = Chunk(0, 0.0, float(seconds), 0, starts)
    for rung in renditions:
        (out / rung.name).mkdir(parents=True)
    command = build_chunk_command(
        str(source), "mov", 0.0, chunk, renditions, out, binary=ffmpeg, preset="veryfast"
    )
    positions = [i for i, arg in enumerate(command) if arg == "-preset"]
    if len(positions) != len(renditions):
        raise RuntimeError(f"expected one -preset per rung, found {len(positions)}")
    for at, preset in reversed(list(zip(positions, config.presets, strict=True))):
        if config.params:
            # Added to the rung's own x264 params: a second -x264-params would replace them.
            params = command.index("-x264-params", at) + 1
            command[params] += f":{config.params}"
        command[at + 1 : at + 2] = [preset, "-threads", str(threads)]
    return command


def decode_scale_command(
    ffmpeg: str, source: Path, renditions: Sequence[Rendition], threads: int
) -> list[str]:
    """The same decode, split and scales with no encoder: the floor beneath every preset."""
    split = f"[0:v]split={len(renditions)}" + "".join(f"[s{i}]" for i in range(len(renditions)))
    chains = [
        f"[s{i}]scale={r.width}:{r.height},setsar=1,format=yuv420p[v{i}]"
        for i, r in enumerate(renditions)
    ]
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", str(threads)]
    command += ["-i", str(source), "-filter_complex", ";".join([split, *chains])]
    for i in range(len(renditions)):
        command += ["-map", f"[v{i}]", "-c:v", "wrapped_avframe", "-f", "null", "-"]
    return command


def pinned(command: Sequence[str], cores: int) -> list[str]:
    """Run on the first ``cores`` CPUs, at a lower priority than the machine's other work."""
    return ["nice", "-n", "10", "taskset", "-c", f"0-{cores - 1}", *command]


def score(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    out: Path,
    seconds: float,
    subsample: int,
) -> list[dict[str, Any]]:
    """VMAF, frames scored and bitrate of every rung, in one ffmpeg pass.

    The metric is ``vod_local.score_rung``'s (libvmaf's default model against the source
    scaled bicubic to the rung, both from their first frame, every ``subsample``-th frame
    scored) but the source is decoded once for all rungs: its decode is most of the cost.
    """
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    graph = [f"[{len(renditions)}:v]split={len(renditions)}" + "".join(
        f"[src{i}]" for i in range(len(renditions))
    )]  # fmt: skip
    logs = []
    for i, rung in enumerate(renditions):
        segments = sorted((out / rung.name).glob("seg_*.ts"))
        command += ["-i", str(_playlist(out / rung.name, segments, seconds))]
        logs.append(out / f"{rung.name}.vmaf.json")
        graph += [
            f"[{i}:v]setpts=PTS-STARTPTS[d{i}]",
            f"[src{i}]scale={rung.width}:{rung.height}:flags=bicubic,setpts=PTS-STARTPTS[r{i}]",
            f"[d{i}][r{i}]libvmaf=n_threads=2:n_subsample={subsample}:log_fmt=json"
            f":log_path={logs[-1]}[o{i}]",
        ]
    command += ["-i", str(source), "-filter_complex", ";".join(graph)]
    for i in range(len(renditions)):
        command += ["-map", f"[o{i}]", "-f", "null", "-"]
    done = subprocess.run(pinned(command, os.cpu_count() or 1), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"libvmaf failed: {done.stderr.strip()[-300:]}")
    rungs = []
    for rung, vmaf_log in zip(renditions, logs, strict=True):
        data = json.loads(vmaf_log.read_text())
        pooled = data["pooled_metrics"]["vmaf"]
        size = sum(s.stat().st_size for s in (out / rung.name).glob("seg_*.ts"))
        rungs.append(
            {
                "name": rung.name,
                "target_kbps": rung.kbps,
                "metric": "vmaf",
                "score": round(pooled["mean"], 3),
                "score_min": round(pooled["min"], 3),
                "frames_scored": len(data["frames"]),
                "last_frame_scored": data["frames"][-1]["frameNum"],
                "kbps": round(size * 8 / seconds / 1000, 1),
            }
        )
    return rungs


def _playlist(folder: Path, segments: Sequence[Path], seconds: float) -> Path:
    """A VOD media playlist over the segments, so scoring reads them as vod_local.py does."""
    duration = seconds / len(segments)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(duration + 0.999)}"]
    for segment in segments:
        lines += [f"#EXTINF:{duration:.3f},", segment.name]
    lines.append("#EXT-X-ENDLIST")
    path = folder / "index.m3u8"
    path.write_text("\n".join(lines) + "\n")
    return path


def pricing_inputs(results: Sequence[Result], aac: Usage, seconds: int) -> Measured:
    """What cloud_model needs besides the chunks' CPU: output and AAC per source second.

    The output is plain veryfast's (its bitrates are within a few percent of every other
    configuration's: each rung's rate control aims at the same ``b:v``).
    """
    base = next((r for r in results if r.config.name == "veryfast"), results[0])
    output_mb = sum(g["kbps"] for g in base.rungs) / 8 / 1000
    return Measured(0.0, output_mb, aac.cpu_s / seconds, "x264_presets", probe_cost())


def price(cpu_per_source_s: float, memory_mb: int, m: Measured, billing: VodBilling) -> float:
    """$ per source minute of a 1 h job whose chunks cost this much CPU, per cloud_model."""
    at = dataclasses.replace(m, cpu_per_source_second=cpu_per_source_s, source="")
    chunk_s = template_defaults().chunk_seconds
    row = model(PRICED_INPUT_S, chunk_s, memory_mb, MAP_CONCURRENCY, at, billing)
    return row["usd_per_source_minute"]


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    began = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ffmpeg = ffmpeg_binary()
    defaults = template_defaults()
    CACHE.mkdir(parents=True, exist_ok=True)
    source = make_source(ffmpeg, args.seconds)
    renditions = build_ladder(WIDTH, HEIGHT, FPS, defaults.ladder)
    chosen = [c for c in configs(len(renditions)) if not args.only or c.name in args.only]
    work = Path(tempfile.mkdtemp(prefix=f"x264-{stamp}-", dir=CACHE))
    results: list[Result] = []
    floors: dict[int, Usage] = {}
    try:
        # The audio item's work (cloud_model prices it beside the chunks).
        aac = measure(
            pinned([ffmpeg, "-v", "error", "-i", str(source), "-vn", "-c:a", "aac",
                    "-b:a", f"{defaults.audio_kbps}k", "-ac", "2", "-f", "null", "-"], 1),
            work / "aac.log",
        )  # fmt: skip
        for threads in args.threads:
            floors[threads] = measure(
                pinned(decode_scale_command(ffmpeg, source, renditions, threads), threads),
                work / f"floor-{threads}.log",
            )
            log.info("decode+scale, %d thread(s): %.1f CPU-s", threads, floors[threads].cpu_s)
            for config in chosen:
                result = encode(ffmpeg, source, renditions, config, threads, work, args, defaults)
                results.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # Memory, Lambda calls and transitions as the template's VOD machine runs a job.
    billing = VodBilling.from_stack(Stack(ROOT))
    memory = billing.branch("video").memory_mb
    m = pricing_inputs(results, aac, args.seconds)
    rows = [row(r, args.seconds, floors, memory, m, billing) for r in results]
    mark_against_today(rows)
    table = render(rows, memory)
    runtime = round(time.monotonic() - began, 1)
    document = {
        "benchmark": "x264_presets",
        "timestamp": stamp,
        "machine": machine_record(ffmpeg),
        "source": source_record(source, args.seconds),
        "settings": {
            "ladder": defaults.ladder,
            "segment_seconds": defaults.segment_seconds,
            "vmaf_subsample": args.subsample,
            "repeat": args.repeat,
            "priced_as": f"{PRICED_INPUT_S} s input, {defaults.chunk_seconds:g} s chunks, "
            f"MapMaxConcurrency {MAP_CONCURRENCY}, cloud_model.model",
            "cloud_model_inputs": asdict(m),
            "template_transcode_memory_mb": memory,
        },
        "decode_scale_floor": {
            str(t): {**u.to_dict(), "cpu_per_source_s": round(u.cpu_s / args.seconds, 3)}
            for t, u in floors.items()
        },
        "runs": rows,
        "benchmark_seconds": runtime,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"x264_presets-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"x264_presets: {args.seconds} s {WIDTH}x{HEIGHT}p{FPS} source, {os.cpu_count()} CPUs")
    for threads, usage in floors.items():
        print(
            f"decode+split+scale alone, {threads} thread(s): "
            f"{usage.cpu_s / args.seconds:.2f} CPU-s per source second"
        )
    print(table)
    print(f"benchmark ran {runtime:.0f} s; results in {path.relative_to(ROOT)}")
    return 0


def encode(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    config: Config,
    threads: int,
    work: Path,
    args: argparse.Namespace,
    defaults: Defaults,
) -> Result:
    """Encode ``args.repeat`` times (keeping the least CPU), then score the last output."""
    runs = []
    for i in range(args.repeat):
        out = work / f"{config.name.replace(' ', '_').replace(',', '')}-t{threads}-{i}"
        command = chunk_command(
            ffmpeg,
            source,
            renditions,
            out,
            config,
            threads,
            args.seconds,
            defaults.segment_seconds,
        )
        runs.append(measure(pinned(command, threads), work / f"{out.name}.log"))
        log.info(
            "%s, %d thread(s): %.1f CPU-s, %.1f s wall", config.name, threads, runs[-1].cpu_s,
            runs[-1].wall_s,
        )  # fmt: skip
    usage = min(runs, key=lambda u: u.cpu_s)
    rungs = score(ffmpeg, source, renditions, out, float(args.seconds), args.subsample)
    shutil.rmtree(out, ignore_errors=True)
    return Result(config, threads, usage, rungs)


def row(
    result: Result,
    seconds: int,
    floors: dict[int, Usage],
    template_memory: int,
    m: Measured,
    billing: VodBilling,
) -> dict[str, Any]:
    """One run as the table and the JSON show it, priced at the function sizes it stands for."""
    cpu_per_s = result.usage.cpu_s / seconds
    threads = result.threads
    sizes = {threads * MB_PER_VCPU: "measured"}
    if threads == 2:
        # More vCPUs than this machine has: the same CPU per source second, and
        # cloud_model's parallel efficiency (98 % at 2, 80 % assumed at 6).
        sizes[3 * MB_PER_VCPU] = "modelled"
        sizes[template_memory] = "modelled"
    return {
        "config": asdict(result.config),
        "threads": threads,
        "usage": result.usage.to_dict(),
        "cpu_per_source_s": round(cpu_per_s, 3),
        "x264_cpu_per_source_s": round(cpu_per_s - floors[threads].cpu_s / seconds, 3),
        "parallel_efficiency": round(result.usage.cpu_s / (threads * result.usage.wall_s), 3),
        "rungs": result.rungs,
        "vmaf_mean": round(result.vmaf_mean, 3),
        "usd_per_source_minute": {
            str(mb): {
                "usd": round(price(cpu_per_s, mb, m, billing), 5),
                "vcpus": round(vcpus(mb), 2),
                "how": how,
            }
            for mb, how in sizes.items()
        },
    }


def mark_against_today(rows: list[dict[str, Any]]) -> None:
    """Each run's VMAF against plain veryfast (the template's default) at the same threads."""
    today = {r["threads"]: r for r in rows if r["config"]["name"] == "veryfast"}
    for r in rows:
        base = today.get(r["threads"])
        if base is None:
            continue
        diffs = {
            ours["name"]: round(ours["score"] - theirs["score"], 3)
            for ours, theirs in zip(r["rungs"], base["rungs"], strict=True)
        }
        r["vmaf_vs_veryfast"] = {
            "mean": round(r["vmaf_mean"] - base["vmaf_mean"], 3),
            "worst_rung": min(diffs, key=lambda name: diffs[name]),
            "per_rung": diffs,
        }
        r["cpu_vs_veryfast"] = round(r["cpu_per_source_s"] / base["cpu_per_source_s"], 3)


def render(rows: list[dict[str, Any]], template_memory: int) -> str:
    """The printed table: one line per configuration and thread count."""
    names = [r["name"] for r in rows[0]["rungs"]] if rows else []
    head = (
        f"{'config':<31} {'thr':>3} {'CPU-s/s':>7} {'x':>5} {'wall':>5} {'eff':>4} | "
        + " ".join(f"{n:>6}" for n in names)
        + f" {'mean':>6} {'diff':>6} {'worst':>11} | {'kbps/target':>11} | $/source-minute"
    )
    lines = [head]
    for r in rows:
        versus = r.get("vmaf_vs_veryfast", {})
        worst = versus.get("worst_rung", "-")
        worst_text = f"{worst} {versus['per_rung'][worst]:+.2f}" if versus else "-"
        ratio = sum(g["kbps"] for g in r["rungs"]) / sum(g["target_kbps"] for g in r["rungs"])
        usd = ", ".join(
            f"{int(mb)} MB {p['usd']:.4f}{'*' if p['how'] == 'modelled' else ''}"
            for mb, p in r["usd_per_source_minute"].items()
        )
        lines.append(
            f"{r['config']['name'][:31]:<31} {r['threads']:>3} {r['cpu_per_source_s']:>7.2f} "
            f"{r.get('cpu_vs_veryfast', 0):>5.2f} {r['usage']['wall_s']:>5.1f} "
            f"{r['parallel_efficiency']:>4.2f} | "
            + " ".join(f"{g['score']:>6.2f}" for g in r["rungs"])
            + f" {r['vmaf_mean']:>6.2f} {versus.get('mean', 0):>+6.2f} {worst_text:>11} | "
            f"{ratio:>11.3f} | {usd}"
        )
    lines.append(
        f"x: CPU vs veryfast at the same threads; diff, worst: VMAF vs veryfast; "
        f"* modelled from the 2-thread CPU (the template's TranscodeChunk: {template_memory} MB)"
    )
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="source length (default 12)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="x264 threads = cores pinned"
    )
    parser.add_argument("--repeat", type=int, default=1, help="encodes per run, least CPU kept")
    parser.add_argument("--subsample", type=int, default=5, help="VMAF every Nth frame")
    parser.add_argument("--only", nargs="*", help="run only these configurations (by name)")
    args = parser.parse_args(argv)
    if min(args.seconds, args.repeat, args.subsample, *args.threads) < 1:
        parser.error("--seconds, --threads, --repeat and --subsample must be positive")
    if max(args.threads) > (os.cpu_count() or 1):
        parser.error("--threads above this machine's CPU count: those sizes are modelled")
    return args


if __name__ == "__main__":
    sys.exit(main())
