"""Live soak: many streams of tiny segments through the real live pipeline, every playlist
read checked.

One run of this script:

1. makes a tiny venue clip (lavfi ``testsrc2`` at ``--size``, 30 fps, with a tone) and cuts
   it into ``--segments`` MPEG-TS segments of ``--segment`` seconds, once, cached under
   ``bench/.cache/``;
2. starts the local stack in this process (moto S3, Step Functions and DynamoDB, the
   template's functions in their workers, real ffmpeg) and gives each of ``--streams``
   streams a ``stream.json`` (segment length, a gap timeout far past any delay here, a
   two-rung ladder and the audio rendition);
3. uploads every stream's segments interleaved across streams, as venues at once would,
   each stream in its own order: mostly in sequence, some up to two places late, some
   sent twice (S3 redelivery; ``workflow.cli.venue.delivery_order``), from
   ``--uploaders`` threads, then each stream's ``END``;
4. all the while reads every stream's media playlists (every rung and the audio) over
   and over and checks each read (``workflow.cli.playlist_watch``): media sequence never
   back, no hole, no reorder, nothing listed twice, never a shrink, no gap, nothing after
   ``EXT-X-ENDLIST``;
5. at the end checks that every playlist of every stream lists each segment exactly once,
   closed, and that every stream published its recording;
6. prints throughput (segments/s and segment-renditions/s end to end) and the latency
   from a segment's first upload to its first read in every playlist (p50/p95), writes
   everything to ``bench/results/live_soak-<timestamp>.json``, and exits 1 if any rule
   broke or anything is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflow.cli import venue
from workflow.cli.playlist_watch import PlaylistWatch
from workflow.live.paths import StreamPaths
from workflow.local.binaries import ffmpeg_binary
from workflow.local.engine import LocalEngine
from workflow.names import AUDIO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"
# Bump when the clip's recipe changes.
CLIP_VERSION = 1
log = logging.getLogger("bench.soak")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def make_segments(size: str, count: int, segment_s: float) -> list[Path]:
    """The venue's segments, generated once and cached."""
    folder = CACHE / f"soak-{size}-{count}x{segment_s:g}s-v{CLIP_VERSION}"
    segments = sorted(folder.glob("segments/*.ts"), key=lambda p: int(p.stem))
    if len(segments) == count:
        return segments
    folder.mkdir(parents=True, exist_ok=True)
    clip, seconds = folder / "venue.mp4", count * segment_s
    subprocess.run(
        [
            ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(clip),
        ],
        check=True,
    )  # fmt: skip
    segments = venue.cut_segments(clip, folder / "segments", segment_s, binary=ffmpeg_binary())
    if len(segments) != count:
        raise SystemExit(f"cut {len(segments)} segments, wanted {count}")
    return segments


def upload_plan(streams: list[str], count: int) -> list[tuple[str, int]]:
    """Every stream's uploads in its own delivery order, interleaved round-robin."""
    orders = {
        s: venue.delivery_order(count, shuffle=True, duplicates=True, seed=n)
        for n, s in enumerate(streams)
    }
    plan = []
    for step in range(max(len(o) for o in orders.values())):
        plan += [(s, o[step]) for s, o in orders.items() if step < len(o)]
    return plan


class Watcher:
    """Reads every stream's playlists in a loop; checks every read; notes when each
    segment was first listed in every playlist of its stream."""

    def __init__(self, s3: Any, bucket: str, streams: list[str]) -> None:
        self.s3, self.bucket, self.streams = s3, bucket, streams
        self.playlists: dict[str, list[str]] = {}  # stream -> playlist keys, once known
        self.watches: dict[str, PlaylistWatch] = {}
        self.first_listed: dict[tuple[str, str], dict[int, float]] = {}
        self.rounds = 0
        self.stop = threading.Event()

    def _read(self, key: str) -> str | None:
        try:
            return str(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode())
        except self.s3.exceptions.NoSuchKey:
            return None

    def _keys(self, stream: str) -> list[str]:
        if stream not in self.playlists:
            paths = StreamPaths(stream)
            master = self._read(paths.live_master_key)
            if master is None:
                return []
            names = venue._VARIANT.findall(master)
            names += [AUDIO] if f"{AUDIO}/live.m3u8" in master else []
            self.playlists[stream] = [paths.live_playlist_key(n) for n in names]
        return self.playlists[stream]

    def sweep(self) -> None:
        """One read of every playlist there is."""
        for stream in self.streams:
            for key in self._keys(stream):
                text = self._read(key)
                if text is None:
                    continue
                at = time.monotonic()
                watch = self.watches.setdefault(key, PlaylistWatch(key))
                watch.observe(text)
                assert watch.last is not None
                listed = self.first_listed.setdefault((stream, key), {})
                for sequence in watch.last.sequences:
                    listed.setdefault(sequence, at)
        self.rounds += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.sweep()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=100, help="streams at once (100)")
    parser.add_argument("--segments", type=int, default=20, help="segments a stream (20)")
    parser.add_argument("--segment", type=float, default=1.0, help="segment seconds (1)")
    parser.add_argument("--size", default="160x90", help="the venue's picture (160x90)")
    parser.add_argument("--ladder", default="90:150,54:80", help="each stream's ladder")
    parser.add_argument("--uploaders", type=int, default=8, help="upload threads (8)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait (1800)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("vidflow", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    segments = make_segments(args.size, args.segments, args.segment)
    streams = [f"soak-{n:04d}" for n in range(args.streams)]
    plan = upload_plan(streams, args.segments)
    duplicates = len(plan) - args.streams * args.segments
    log.info("%d streams x %d segments of %s: %d uploads (%d duplicates)",
             args.streams, args.segments, args.size, len(plan), duplicates)  # fmt: skip

    engine = LocalEngine(ROOT, log_file=Path(tempfile.gettempdir()) / "vidflow-bench-soak.log")
    ep = engine.start()
    s3 = engine.client("s3")
    watcher = Watcher(engine.client("s3"), ep.output_bucket, streams)
    uploaded: dict[tuple[str, int], float] = {}
    config = {"segment_seconds": args.segment, "gap_seconds": 3600, "ladder": args.ladder}
    try:
        for stream in streams:
            s3.put_object(Bucket=ep.ingest_bucket, Key=f"live/{stream}/stream.json",
                          Body=json.dumps(config).encode())  # fmt: skip
        watching = threading.Thread(target=watcher.run, daemon=True)
        watching.start()
        began = time.monotonic()

        def upload(item: tuple[str, int]) -> None:
            stream, sequence = item
            key = f"live/{stream}/{sequence}.ts"
            at = time.monotonic()
            s3.upload_file(str(segments[sequence]), ep.ingest_bucket, key)
            uploaded.setdefault((stream, sequence), at)

        with ThreadPoolExecutor(max_workers=args.uploaders) as pool:
            list(pool.map(upload, plan))
        uploads_s = time.monotonic() - began
        for stream in streams:
            s3.put_object(Bucket=ep.ingest_bucket, Key=f"live/{stream}/END", Body=b"")
        masters = {StreamPaths(s).master_key for s in streams}
        deadline = time.monotonic() + args.timeout
        published: set[str] = set()
        while time.monotonic() < deadline and published != masters:
            keys = set()
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=ep.output_bucket, Prefix="live/soak-"
            ):
                keys |= {o["Key"] for o in page.get("Contents", [])}
            published = masters & keys
            time.sleep(1)
        elapsed = time.monotonic() - began
        watcher.stop.set()
        watching.join()
        watcher.sweep()  # one last read of everything, after the end
        calls = len(engine.lambdas.timings) if engine.lambdas else 0
    finally:
        engine.stop()

    problems = [v for w in watcher.watches.values() for v in w.violations]
    missing = sorted(masters - published)
    expected = tuple(range(args.segments))
    for stream in streams:
        playlists = watcher.playlists.get(stream, [])
        if not playlists:
            problems.append(f"{stream}: no live playlists")
        for key in playlists:
            last = watcher.watches[key].last if key in watcher.watches else None
            if last is None or last.sequences != expected or not last.ended:
                shown = "nothing" if last is None else f"{len(last.sequences)} segments"
                problems.append(f"{key}: ends with {shown}, not 0..{args.segments - 1} closed")
    latencies = []
    for stream in streams:
        for sequence in range(args.segments):
            seen = [
                watcher.first_listed.get((stream, key), {}).get(sequence)
                for key in watcher.playlists.get(stream, [])
            ]
            if seen and None not in seen and (stream, sequence) in uploaded:
                latencies.append(max(s for s in seen if s is not None) - uploaded[stream, sequence])
    rungs = max((len(k) for k in watcher.playlists.values()), default=0)
    total = args.streams * args.segments
    reads = sum(w.readings for w in watcher.watches.values())
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "streams": args.streams,
        "segments_per_stream": args.segments,
        "segment_seconds": args.segment,
        "size": args.size,
        "ladder": args.ladder,
        "playlists_per_stream": rungs,
        "uploads": len(plan),
        "duplicate_uploads": len(plan) - total,
        "uploads_s": round(uploads_s, 2),
        "elapsed_s": round(elapsed, 2),
        "segments_per_s": round(total / elapsed, 3),
        "segment_renditions_per_s": round(total * rungs / elapsed, 3),
        "latency_p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
        "latencies_measured": len(latencies),
        "lambda_calls": calls,
        "playlist_reads": reads,
        "watch_rounds": watcher.rounds,
        "recordings_missing": missing,
        "violations": problems,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"live_soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nlive soak: {args.streams} streams x {args.segments} segments of {args.segment:g} s "
          f"at {args.size}, {rungs} playlists a stream, {len(plan)} uploads "
          f"({result['duplicate_uploads']} duplicates), {os.cpu_count()} CPUs")  # fmt: skip
    print(f"  {elapsed:.1f} s end to end (uploads took {uploads_s:.1f} s): "
          f"{result['segments_per_s']:.2f} segments/s, "
          f"{result['segment_renditions_per_s']:.2f} segment-playlists/s")  # fmt: skip
    if latencies:
        print(f"  upload -> listed in every playlist: p50 {result['latency_p50_s']:.2f} s, "
              f"p95 {result['latency_p95_s']:.2f} s over {len(latencies)} segments")  # fmt: skip
    print(f"  {reads} playlist reads in {watcher.rounds} rounds, {calls} Lambda calls; "
          f"recordings missing: {len(missing)}; violations: {len(problems)}")  # fmt: skip
    for problem in problems[:20]:
        print(f"    {problem}")
    print(f"  written to {out.relative_to(ROOT)}")
    return 1 if problems or missing else 0


if __name__ == "__main__":
    sys.exit(main())
