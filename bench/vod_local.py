"""VOD benchmark: ``vidflow process`` against one plain ffmpeg run, on the same machine.

One run of this script:

1. generates (once, cached under ``bench/.cache/``) a 1080p30 source with detail,
   motion, film grain and stereo audio;
2. encodes the template's default ladder with ONE ffmpeg process (the baseline): same
   rungs, preset, rate control, profile, level, 4 s segments with forced keyframes, HLS
   TS output, AAC audio once;
3. runs ``vidflow process`` on the same source (the full local stack: moto S3 and Step
   Functions, Lambda handlers on threads, chunked ffmpeg jobs);
4. scores every rung of both outputs against the source (VMAF, or PSNR if libvmaf
   fails) and measures their average bitrates;
5. prints a table of the differences and ratios, and writes everything as JSON to
   ``bench/results/vod_local-<timestamp>.json``.

Nothing is asserted about speed: the numbers are reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflow.local.binaries import ffmpeg_binary
from workflow.local.build import ensure_stack_built
from workflow.local.template import Stack, load_template
from workflow.media import quality
from workflow.media.ladder import Rendition, build_ladder

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"

WIDTH, HEIGHT, FPS = 1920, 1080, 30
SOURCE_GOP_SECONDS = 2
# Bump when the source recipe changes, so a stale cached file is not reused.
SOURCE_VERSION = 1
# testsrc2 (moving shapes, counters, colour bars) blended with a large static noise
# texture that pans smoothly (detail that motion compensation can follow), plus light
# temporal grain (detail it cannot).
SOURCE_GRAPH = (
    f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}[pattern];"
    f"color=c=gray:size=2560x1440:rate={FPS},noise=alls=25:allf=u,"
    f"crop={WIDTH}:{HEIGHT}:x='320+300*sin(t*0.9)':y='180+170*cos(t*0.7)'[texture];"
    "[pattern][texture]blend=all_mode=overlay,noise=alls=3:allf=t,format=yuv420p[v]"
)
SOURCE_AUDIO = "aevalsrc=exprs='0.4*sin(440*2*PI*t)|0.3*sin(660*2*PI*t)':s=48000"

PROC_SAMPLE_SECONDS = 0.2

log = logging.getLogger("bench.vod_local")


@dataclass(frozen=True)
class Usage:
    """What one measured command cost: wall and CPU time, and memory.

    ``max_rss_mib`` is the kernel's peak resident set of the largest single process in
    the command's tree (``ru_maxrss`` from ``wait4``); ``peak_tree_rss_mib`` is the
    largest sum of resident sets of all its processes at once, sampled every 0.2 s.
    ``other_cpu_s`` is the CPU time everything else on the machine used meanwhile: when
    it is large, the wall time measured contention, not the command.
    """

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mib: float
    peak_tree_rss_mib: float
    other_cpu_s: float

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "cpu_s": round(self.cpu_s, 3)}


@dataclass(frozen=True)
class RungResult:
    """One rung of one output: its quality against the source and its bitrate."""

    name: str
    width: int
    height: int
    target_kbps: int
    metric: str
    score: float
    score_min: float
    decoded_frames: int
    segments: int
    duration_s: float
    bytes: int

    @property
    def kbps(self) -> float:
        return self.bytes * 8 / self.duration_s / 1000 if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kbps": round(self.kbps, 1)}


@dataclass(frozen=True)
class Defaults:
    """The template's parameter defaults the pipeline runs with."""

    ladder: str
    segment_seconds: float
    chunk_seconds: float
    preset: str
    audio_kbps: int


class CommandFailed(RuntimeError):
    """A measured or helper command exited non-zero."""


def template_defaults() -> Defaults:
    """Read the ladder, segment length and preset from ``sam-template.yaml``."""
    parameters = load_template(ROOT / "sam-template.yaml")["Parameters"]
    return Defaults(
        ladder=str(parameters["Ladder"]["Default"]),
        segment_seconds=float(parameters["SegmentSeconds"]["Default"]),
        chunk_seconds=float(parameters["ChunkSeconds"]["Default"]),
        preset=str(parameters["X264Preset"]["Default"]),
        # The audio bitrate is not a template parameter; the functions use this default.
        audio_kbps=128,
    )


def make_source(ffmpeg: str, seconds: int) -> Path:
    """The cached benchmark source, generated on first use (H.264 crf 16, AAC stereo)."""
    path = CACHE / f"source-{WIDTH}x{HEIGHT}p{FPS}-{seconds}s-v{SOURCE_VERSION}.mp4"
    if path.exists():
        log.info("using cached source %s", path.relative_to(ROOT))
        return path
    log.info("generating a %d s %dx%d source (once)", seconds, WIDTH, HEIGHT)
    partial = path.with_suffix(".partial.mp4")
    # fmt: off
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-filter_complex", SOURCE_GRAPH,
        "-f", "lavfi", "-i", SOURCE_AUDIO,
        "-map", "[v]", "-map", "0:a",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
        "-g", str(SOURCE_GOP_SECONDS * FPS), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", "-ac", "2",
        "-movflags", "+faststart",
        str(partial),
    ]
    # fmt: on
    _run(command)
    partial.rename(path)
    return path


def baseline_command(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    out: Path,
    defaults: Defaults,
    total_frames: int,
) -> list[str]:
    """One ffmpeg process: decode once, encode every rung and the audio to HLS TS.

    Per rung it uses what ``workflow.media.encode.build_chunk_command`` uses (scale, setsar,
    yuv420p, libx264 High at the rung's level, its rate control, no scene-cut
    keyframes, a keyframe at every segment start), but over the whole file at once.
    """
    split = f"[0:v]split={len(renditions)}" + "".join(f"[s{i}]" for i in range(len(renditions)))
    chains = [
        f"[s{i}]scale={r.width}:{r.height}:out_range=tv,setsar=1,format=yuv420p[v{i}]"
        for i, r in enumerate(renditions)
    ]
    seg = defaults.segment_seconds
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    command += ["-filter_complex", ";".join([split, *chains])]
    for i, rung in enumerate(renditions):
        (out / rung.name).mkdir(parents=True)
        # fmt: off
        command += [
            "-map", f"[v{i}]", "-an",
            "-c:v", "libx264", "-preset", defaults.preset,
            "-profile:v", "high", "-level:v", rung.level,
            *(arg for key, value in rung.rate_control.items() for arg in (f"-{key}", value)),
            "-g", str(total_frames + 1), "-sc_threshold", "0",
            "-force_key_frames", f"expr:gte(t,n_forced*{seg:g})",
            "-fps_mode", "passthrough", "-map_metadata", "-1",
            *_hls_options(out / rung.name, seg),
        ]
        # fmt: on
    (out / "audio").mkdir(parents=True)
    command += ["-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", f"{defaults.audio_kbps}k"]
    command += ["-ac", "2", "-ar", "48000", "-map_metadata", "-1"]
    command += _hls_options(out / "audio", seg)
    return command


def _hls_options(directory: Path, segment_seconds: float) -> list[str]:
    # fmt: off
    return [
        "-f", "hls", "-hls_time", f"{segment_seconds:g}", "-hls_playlist_type", "vod",
        "-hls_segment_type", "mpegts",
        "-hls_segment_filename", str(directory / "seg_%05d.ts"),
        str(directory / "index.m3u8"),
    ]
    # fmt: on


def vidflow_executable() -> str:
    """The ``vidflow`` console script of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "vidflow"
    if beside.exists():
        return str(beside)
    found = shutil.which("vidflow")
    if found is None:
        raise SystemExit("error: the vidflow command is not installed (run `make setup`)")
    return found


def measure(command: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> Usage:
    """Run ``command`` to completion and return what it and its descendants cost.

    CPU time and ``ru_maxrss`` come from ``wait4`` on the command's own process, which
    covers every descendant it waited for (ffmpeg jobs started by vidflow included) and
    nothing else this script ran, unlike a ``getrusage(RUSAGE_CHILDREN)`` maximum.
    """
    with log_path.open("wb") as output:
        busy_before = _machine_busy_seconds()
        began = time.monotonic()
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env
        )
        sampler = _TreeRssSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - began
        busy = _machine_busy_seconds() - busy_before
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    if process.returncode != 0:
        raise CommandFailed(
            f"{Path(command[0]).name} exited {process.returncode}; see {log_path}:\n"
            + _tail(log_path)
        )
    return Usage(
        wall_s=round(wall, 3),
        user_s=round(usage.ru_utime, 3),
        sys_s=round(usage.ru_stime, 3),
        max_rss_mib=round(usage.ru_maxrss / 1024, 1),
        peak_tree_rss_mib=round(sampler.peak_bytes / 2**20, 1),
        other_cpu_s=round(max(0.0, busy - usage.ru_utime - usage.ru_stime), 1),
    )


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class _TreeRssSampler:
    """Samples the summed resident set of a process and all its descendants (Linux)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._tree_rss())
            self._stop.wait(PROC_SAMPLE_SECONDS)

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces or parentheses: parse after the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
        tree, frontier = {self.root}, [self.root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            tree.update(children)
            frontier.extend(children)
        total = 0
        for pid in tree:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
            except (OSError, IndexError, ValueError):
                continue
        return total


def playlist_segments(playlist: Path) -> tuple[int, float, int]:
    """Segment count, summed ``EXTINF`` duration and summed file size of a media playlist."""
    duration, size, count = 0.0, 0, 0
    for line in playlist.read_text().splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration += float(line[len("#EXTINF:") :].split(",")[0])
        elif line and not line.startswith("#"):
            size += (playlist.parent / line).stat().st_size
            count += 1
    return count, duration, size


def score_rung(
    ffmpeg: str, source: Path, rung: Rendition, playlist: Path, work: Path, subsample: int
) -> tuple[str, float, float, int]:
    """(metric, mean, min, decoded frames) of a rung's playlist against the scaled source.

    VMAF (libvmaf, default model, every ``subsample``-th frame) when it works; PSNR
    (average over Y, U, V) otherwise.
    """
    vmaf_log = work / f"{rung.name}.vmaf.json"
    # Each side's pixels as they are (``quality.ALIKE``): vidflow's rungs say the colour
    # an untagged source is taken to have, and told apart from the source's (none) the
    # graph converted one side's matrix (-34 to -40 VMAF for identical pixels).
    graph = (
        f"[0:v]setpts=PTS-STARTPTS,{quality.ALIKE}[d];"
        f"[1:v]scale={rung.width}:{rung.height}:flags=bicubic,setpts=PTS-STARTPTS,"
        f"{quality.ALIKE}[r];"
        f"[d][r]libvmaf=n_threads=2:n_subsample={subsample}:log_fmt=json:log_path={vmaf_log}"
    )
    done = _compare(ffmpeg, playlist, source, graph)
    if done.returncode == 0 and vmaf_log.exists():
        pooled = json.loads(vmaf_log.read_text())["pooled_metrics"]["vmaf"]
        return "vmaf", pooled["mean"], pooled["min"], _decoded_frames(done.stderr)
    log.warning("libvmaf failed for %s (%s); falling back to PSNR", playlist, _last(done.stderr))
    graph = graph.rsplit(";", 1)[0] + ";[d][r]psnr"
    done = _compare(ffmpeg, playlist, source, graph)
    if done.returncode != 0:
        raise CommandFailed(f"psnr failed for {playlist}: {_last(done.stderr)}")
    found = re.search(r"PSNR y:\S+ u:\S+ v:\S+ average:(\S+) min:(\S+)", done.stderr)
    if found is None:
        raise CommandFailed(f"no PSNR summary for {playlist}")
    return "psnr", float(found[1]), float(found[2]), _decoded_frames(done.stderr)


def _compare(
    ffmpeg: str, distorted: Path, reference: Path, graph: str
) -> subprocess.CompletedProcess[str]:
    # fmt: off
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-i", str(distorted), "-i", str(reference),
        "-lavfi", graph, "-f", "null", "-",
    ]
    # fmt: on
    return subprocess.run(command, capture_output=True, text=True, errors="replace")


def _decoded_frames(stderr: str) -> int:
    """Frames that went through the comparison, from ffmpeg's final statistics."""
    counts = re.findall(r"frame=\s*(\d+)", stderr)
    return int(counts[-1]) if counts else -1


def evaluate(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    out: Path,
    work: Path,
    subsample: int,
) -> list[RungResult]:
    """Quality and bitrate of every rung of one HLS output."""
    results = []
    for rung in renditions:
        playlist = out / rung.name / "index.m3u8"
        log.info("scoring %s", playlist)
        metric, score, low, frames = score_rung(ffmpeg, source, rung, playlist, work, subsample)
        segments, duration, size = playlist_segments(playlist)
        results.append(
            RungResult(
                name=rung.name,
                width=rung.width,
                height=rung.height,
                target_kbps=rung.kbps,
                metric=metric,
                score=round(score, 3),
                score_min=round(low, 3),
                decoded_frames=frames,
                segments=segments,
                duration_s=round(duration, 3),
                bytes=size,
            )
        )
    return results


def audio_kbps(out: Path) -> float:
    """Average bitrate of an output's audio playlist (0 if it has none)."""
    playlist = out / "audio" / "index.m3u8"
    if not playlist.exists():
        return 0.0
    _, duration, size = playlist_segments(playlist)
    return round(size * 8 / duration / 1000, 1) if duration > 0 else 0.0


def report(
    baseline: list[RungResult],
    vidflow: list[RungResult],
    baseline_usage: Usage,
    vidflow_usage: Usage,
    expected_frames: int,
) -> tuple[str, list[str]]:
    """The printed table, and notes about anything that makes a comparison unfair."""
    metric = "/".join(sorted({r.metric for r in baseline + vidflow})).upper()
    lines = [
        f"{'rung':<6} {'size':>9} {'target':>6} | {metric + ' vidflow':>12} {'baseline':>8} "
        f"{'diff':>6} | {'kbps vidflow':>12} {'baseline':>8} {'ratio':>6}",
    ]
    notes = []
    for ours, theirs in zip(vidflow, baseline, strict=True):
        lines.append(
            f"{ours.name:<6} {f'{ours.width}x{ours.height}':>9} {ours.target_kbps:>6} | "
            f"{ours.score:>12.2f} {theirs.score:>8.2f} {ours.score - theirs.score:>+6.2f} | "
            f"{ours.kbps:>12.0f} {theirs.kbps:>8.0f} {ours.kbps / theirs.kbps:>6.3f}"
        )
        for side, result in (("vidflow", ours), ("baseline", theirs)):
            if result.decoded_frames != expected_frames:
                notes.append(
                    f"{side} {result.name}: {result.decoded_frames} frames decoded, "
                    f"source has {expected_frames}"
                )
    lines.append("")
    lines.append(f"{'':<24} {'vidflow':>10} {'baseline':>10} {'ratio':>7}")
    rows = (
        ("wall time (s)", vidflow_usage.wall_s, baseline_usage.wall_s),
        ("CPU time (s)", vidflow_usage.cpu_s, baseline_usage.cpu_s),
        ("peak RSS, 1 proc (MiB)", vidflow_usage.max_rss_mib, baseline_usage.max_rss_mib),
        ("peak RSS, tree (MiB)", vidflow_usage.peak_tree_rss_mib, baseline_usage.peak_tree_rss_mib),
        ("other load (CPU s)", vidflow_usage.other_cpu_s, baseline_usage.other_cpu_s),
    )
    for label, ours_value, theirs_value in rows:
        ratio = f"{ours_value / theirs_value:>7.2f}" if theirs_value else f"{'-':>7}"
        lines.append(f"{label:<24} {ours_value:>10.1f} {theirs_value:>10.1f} {ratio}")
    for side, usage in (("vidflow", vidflow_usage), ("baseline", baseline_usage)):
        if contended(usage):
            notes.append(
                f"other processes used {usage.other_cpu_s:.0f} CPU s while {side} ran "
                f"({usage.wall_s:.0f} s wall): its wall time measured contention too"
            )
    return "\n".join(lines), notes


def contended(usage: Usage) -> bool:
    """Whether the rest of the machine took more than 10 % of its CPUs during a run.

    An idle machine shows a few percent here (kernel workers, the sampler's /proc reads).
    """
    return usage.other_cpu_s > 0.10 * usage.wall_s * (os.cpu_count() or 1)


def ffmpeg_version(ffmpeg: str) -> str:
    done = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.stdout else "unknown"


@dataclass(frozen=True)
class Encodes:
    """Every measured run of both sides, and the outputs of the last pair."""

    baseline: list[Usage]
    vidflow: list[Usage]
    baseline_out: Path
    vidflow_out: Path


def run_encodes(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    defaults: Defaults,
    frames: int,
    work: Path,
    repeat: int,
) -> Encodes:
    """Run the baseline and vidflow ``repeat`` times each, alternately."""
    env = {**os.environ, "FFMPEG_BINARY": ffmpeg}
    # A deploy builds once; a measured run must not include a `sam build` because a
    # source file changed since the last one (it did: 18 s of a run on 12-01).
    ensure_stack_built(Stack(ROOT))
    runs: dict[str, list[Usage]] = {"baseline": [], "vidflow": []}
    outputs: dict[str, Path] = {}
    for i in range(repeat):
        for side in ("baseline", "vidflow"):
            out = outputs[side] = work / f"{side}-{i}"
            if side == "baseline":
                log.info(
                    "baseline %d/%d: one ffmpeg, %d rungs + audio", i + 1, repeat, len(renditions)
                )
                command = baseline_command(ffmpeg, source, renditions, out, defaults, frames)
            else:
                log.info("vidflow %d/%d: vidflow process (local stack)", i + 1, repeat)
                # The baseline makes no images and scores nothing: neither does vidflow
                # here (per_title.py measures what the quality report costs).
                command = [vidflow_executable(), "process", str(source), "--out", str(out),
                           "--parameter", "ThumbnailSeconds=0",
                           "--parameter", "QualityReport=off"]  # fmt: skip
            usage = measure(command, work / f"{side}-{i}.log", env=env)
            log.info("%s took %.1f s", side, usage.wall_s)
            runs[side].append(usage)
    return Encodes(runs["baseline"], runs["vidflow"], outputs["baseline"], outputs["vidflow"])


def fastest(runs: Sequence[Usage]) -> Usage:
    """The run least disturbed by everything else: the one with the shortest wall time."""
    return min(runs, key=lambda usage: usage.wall_s)


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
    run = run_both(ffmpeg, source, renditions, defaults, args, stamp)
    table, notes = report(
        run.baseline, run.vidflow, run.baseline_usage, run.vidflow_usage, args.seconds * FPS
    )
    runtime = round(time.monotonic() - began, 1)
    result = {
        "benchmark": "vod_local",
        "timestamp": stamp,
        "machine": machine_record(ffmpeg),
        "source": source_record(source, args.seconds),
        "settings": {**asdict(defaults), "vmaf_subsample": args.subsample, "repeat": args.repeat},
        "renditions": [r.to_dict() for r in renditions],
        **run.to_dict(args.seconds),
        "notes": notes,
        "benchmark_seconds": runtime,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_path = RESULTS / f"vod_local-{stamp}.json"
    result_path.write_text(json.dumps(result, indent=2) + "\n")

    print(f"vod_local: {args.seconds} s {WIDTH}x{HEIGHT}p{FPS} source, {os.cpu_count()} CPUs")
    print(table)
    for note in notes:
        print(f"note: {note}")
    print(f"benchmark ran {runtime:.0f} s; results in {result_path.relative_to(ROOT)}")
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="source length (default 30)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="encode each side N times, report the fastest"
    )
    parser.add_argument(
        "--subsample", type=int, default=5, help="score every Nth frame with VMAF (default 5)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep both HLS outputs under bench/.cache/"
    )
    args = parser.parse_args(argv)
    if min(args.seconds, args.repeat, args.subsample) < 1:
        parser.error("--seconds, --repeat and --subsample must be positive")
    return args


@dataclass
class Run:
    """Both sides encoded, scored and measured, and the audio item's work timed alone."""

    encodes: Encodes
    baseline: list[RungResult]
    vidflow: list[RungResult]
    aac: Usage
    manifest: dict[str, Any]
    audio_kbps: dict[str, float]

    @property
    def baseline_usage(self) -> Usage:
        return fastest(self.encodes.baseline)

    @property
    def vidflow_usage(self) -> Usage:
        return fastest(self.encodes.vidflow)

    def to_dict(self, seconds: int) -> dict[str, Any]:
        """The result file's ``baseline``, ``vidflow``, ``ratios`` and ``aac``."""
        base, vid = self.baseline_usage, self.vidflow_usage
        pairs = list(zip(self.vidflow, self.baseline, strict=True))
        return {
            "baseline": {
                "usage": base.to_dict(),
                "runs": [u.to_dict() for u in self.encodes.baseline],
                "rungs": [r.to_dict() for r in self.baseline],
                "audio_kbps": self.audio_kbps["baseline"],
            },
            "vidflow": {
                "usage": vid.to_dict(),
                "runs": [u.to_dict() for u in self.encodes.vidflow],
                "rungs": [r.to_dict() for r in self.vidflow],
                "audio_kbps": self.audio_kbps["vidflow"],
                "chunks": self.manifest.get("chunks"),
                "timings": self.manifest.get("timings"),
            },
            "ratios": {
                "wall": round(vid.wall_s / base.wall_s, 3),
                "cpu": round(vid.cpu_s / base.cpu_s, 3),
                "max_rss": round(vid.max_rss_mib / base.max_rss_mib, 3),
                "peak_tree_rss": round(vid.peak_tree_rss_mib / base.peak_tree_rss_mib, 3),
                "kbps": {o.name: round(o.kbps / t.kbps, 3) for o, t in pairs},
                "score_diff": {o.name: round(o.score - t.score, 3) for o, t in pairs},
            },
            "aac": {
                "usage": self.aac.to_dict(),
                "cpu_per_source_second": round(self.aac.cpu_s / seconds, 5),
            },
        }


def run_both(
    ffmpeg: str,
    source: Path,
    renditions: Sequence[Rendition],
    defaults: Defaults,
    args: argparse.Namespace,
    stamp: str,
) -> Run:
    """Encode, score and time both sides in a scratch folder, kept only with ``--keep``."""
    work = Path(tempfile.mkdtemp(prefix=f"run-{stamp}-", dir=CACHE))
    frames = args.seconds * FPS
    try:
        encodes = run_encodes(ffmpeg, source, renditions, defaults, frames, work, args.repeat)
        baseline = evaluate(ffmpeg, source, renditions, encodes.baseline_out, work, args.subsample)
        vidflow = evaluate(ffmpeg, source, renditions, encodes.vidflow_out, work, args.subsample)
        # The audio item's work alone (decode the source's audio, AAC 128k), for the
        # cloud model: its CPU-seconds per source second.
        aac = measure(
            [ffmpeg, "-v", "error", "-i", str(source), "-vn", "-c:a", "aac",
             "-b:a", f"{defaults.audio_kbps}k", "-ac", "2", "-f", "null", "-"],
            work / "aac.log",
        )  # fmt: skip
        manifest_path = encodes.vidflow_out / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        audio = {
            "baseline": audio_kbps(encodes.baseline_out),
            "vidflow": audio_kbps(encodes.vidflow_out),
        }
    finally:
        if args.keep:
            log.info("outputs kept in %s", work.relative_to(ROOT))
        else:
            shutil.rmtree(work, ignore_errors=True)
    return Run(encodes, baseline, vidflow, aac, manifest, audio)


def machine_record(ffmpeg: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ffmpeg": ffmpeg_version(ffmpeg),
    }


def source_record(source: Path, seconds: int) -> dict[str, Any]:
    return {
        "path": str(source.relative_to(ROOT)),
        "bytes": source.stat().st_size,
        "seconds": seconds,
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "frames": seconds * FPS,
        "version": SOURCE_VERSION,
        "graph": SOURCE_GRAPH,
    }


def _run(command: Sequence[str]) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True, errors="replace")
    if done.returncode != 0:
        raise CommandFailed(f"{Path(command[0]).name} failed: {_last(done.stderr)}")


def _last(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
