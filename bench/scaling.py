"""Scaling: vidflow and one ffmpeg on 1, 2, 4, ... cores of this machine (``taskset``).

For each core count N (powers of two up to the machine's CPUs, and the CPU count
itself), both sides run pinned to cores 0..N-1: the single-process baseline of
``vod_local.py`` and ``vidflow process`` with ``MapMaxConcurrency=N``. It reports wall
times, each side's speed-up over its own run on one core, and vidflow against the
single ffmpeg process on one core and on N cores. Nothing is asserted; JSON goes to
``bench/results/scaling-<timestamp>.json``. No quality scoring: ``vod_local.py`` does that.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vod_local import (
    RESULTS,
    ROOT,
    baseline_command,
    make_source,
    measure,
    template_defaults,
    vidflow_executable,
)

from workflow.local.binaries import ffmpeg_binary
from workflow.media.ladder import build_ladder

log = logging.getLogger("bench.scaling")


def core_counts(cpus: int) -> list[int]:
    counts = [1]
    while counts[-1] * 2 <= cpus:
        counts.append(counts[-1] * 2)
    return counts if counts[-1] == cpus else [*counts, cpus]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="length of the source (30)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    if shutil.which("taskset") is None:
        raise SystemExit("error: taskset (util-linux) is needed")
    ffmpeg = ffmpeg_binary()
    defaults = template_defaults()
    source = make_source(ffmpeg, args.seconds)
    renditions = build_ladder(1920, 1080, 30.0, defaults.ladder)
    frames = args.seconds * 30
    env = {**os.environ, "FFMPEG_BINARY": ffmpeg}
    cpus = len(os.sched_getaffinity(0))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vidflow-scaling-") as scratch:
        work = Path(scratch)
        for n in core_counts(cpus):
            pin = ["taskset", "-c", f"0-{n - 1}"]
            out = work / f"baseline-{n}"
            log.info("%d core(s): one ffmpeg", n)
            command = baseline_command(ffmpeg, source, renditions, out, defaults, frames)
            baseline = measure([*pin, *command], work / f"baseline-{n}.log", env=env)
            log.info("%d core(s): vidflow process", n)
            vidflow = measure(
                [*pin, vidflow_executable(), "process", str(source), "--out",
                 str(work / f"vidflow-{n}"), "--parameter", f"MapMaxConcurrency={n}"],
                work / f"vidflow-{n}.log",
                env=env,
            )  # fmt: skip
            rows.append({"cores": n, "baseline": baseline.__dict__, "vidflow": vidflow.__dict__})
    one = rows[0]
    print(f"\nscaling: {args.seconds} s 1080p source, 4 rungs + audio, cores pinned with taskset")
    print(f"{'cores':>5} | {'ffmpeg s':>8} {'speed-up':>8} | {'vidflow s':>9} {'speed-up':>8} | "
          f"{'vs ffmpeg on 1':>14} {'vs ffmpeg on N':>14}")  # fmt: skip
    for row in rows:
        b, v = row["baseline"]["wall_s"], row["vidflow"]["wall_s"]
        print(f"{row['cores']:>5} | {b:>8.1f} {one['baseline']['wall_s'] / b:>7.2f}x | "
              f"{v:>9.1f} {one['vidflow']['wall_s'] / v:>7.2f}x | "
              f"{one['baseline']['wall_s'] / v:>13.2f}x {b / v:>13.2f}x")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out_file = RESULTS / f"scaling-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out_file.write_text(json.dumps({"seconds": args.seconds, "cpus": cpus, "rows": rows}, indent=1))
    print(f"written to {out_file.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
