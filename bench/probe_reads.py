"""How much of an upload the probe reads: an hour of the bench source as MP4, MKV and TS.

The probe reads the container's index (MP4's ``moov``, Matroska's cues) or, where there is
none (MPEG-TS), its head and tail, never every packet. This builds ``--minutes`` of video
by looping ``vod_local.py``'s cached 1080p source without re-encoding (``-c copy``), one
container at a time (an hour is ~17 GB, deleted after), and probes it through
``storage.RangeReader``, the reader the Probe function uses, over the local file instead
of S3: each block it fetches counts, as each ranged GET would. It prints bytes read as a
share of the file, requests, and the probe's own seconds (the fastest of ``--repeat``
probes: the first may wait on this machine's disk, which S3 would not), and writes JSON
to ``bench/results/``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vod_local import CACHE, RESULTS, make_source

from workflow.local.binaries import ffmpeg_binary
from workflow.media.probe import probe
from workflow.media.sniff import HEAD_BYTES
from workflow.settings import Limits
from workflow.storage import RangeReader

CONTAINERS = {"mp4": ["-movflags", "+faststart"], "mkv": [], "ts": ["-f", "mpegts"]}
SOURCE_SECONDS = 60


class LocalFile:
    """What ``RangeReader`` needs of a bucket, over one local file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_span(self, key: str, start: int, stop: int, pin: Any = None) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)


def build(source: Path, minutes: int, container: str, directory: Path) -> Path:
    target = directory / f"long.{container}"
    loops = max(0, minutes * 60 // SOURCE_SECONDS - 1)
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y"]
        + ["-stream_loop", str(loops), "-i", str(source), "-c", "copy"]
        + [*CONTAINERS[container], str(target)],
        check=True,
    )
    return target


def measure(path: Path, repeat: int) -> dict[str, Any]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    times = []
    for _ in range(repeat):
        reader = RangeReader(LocalFile(path), path.name, size)  # type: ignore[arg-type]
        began = time.monotonic()
        probed = probe(reader, head=head, size=size, limits=Limits())
        times.append(time.monotonic() - began)
    seconds = min(times)
    read = reader.bytes_read + len(head)
    return {
        "bytes": size,
        "read_bytes": read,
        "read_share": read / size,
        "requests": reader.requests + 1,
        "probe_seconds": round(seconds, 3),
        "duration": probed.facts.duration,
        "keyframes_listed": len(probed.index.keyframes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--containers", default=",".join(CONTAINERS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    source = make_source(ffmpeg_binary(), SOURCE_SECONDS)
    results = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        for container in args.containers.split(","):
            path = build(source, args.minutes, container, Path(scratch))
            results[container] = measure(path, args.repeat)
            path.unlink()
            r = results[container]
            print(
                f"{container:4} {r['bytes'] / 1e9:6.2f} GB  read {r['read_bytes'] / 1e6:7.2f} MB"
                f" = {100 * r['read_share']:.3f} %  in {r['requests']} requests,"
                f" {r['probe_seconds']} s; {r['duration']:.0f} s of video,"
                f" {r['keyframes_listed']} keyframes listed",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"probe_reads-{stamp}.json"
    out.write_text(json.dumps({"minutes": args.minutes, "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
