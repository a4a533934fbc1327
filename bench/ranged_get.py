"""What ranged S3 GETs cost the local stack, with and without the ranged-GET patch.

moto 5.2.5 reads the whole object for every ranged GET; ``workflow.local.ranged_get``
makes a range cost its bytes. This puts one ``--size-mb`` object in moto's threaded server
(the engine's server, in this process) and times ``--gets`` ranged GETs of ``--read-kb``
each, at offsets spread over the object, in two patterns:

- ``closed``: ``bytes=a-b`` through a boto3 client, the whole range read;
- ``open``: ffmpeg's way, ``bytes=a-`` on a presigned URL, ``--read-kb`` read, then hang up.

Each side runs in a fresh Python process (the patch cannot be taken back once installed),
alternately, ``--repeat`` times; the CPU time is that process's (server threads and client
together) over the GETs only, the fastest repeat of each side is kept, and the ratio is
patched / unpatched from this one run. Nothing is asserted; it prints a table and writes
JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PATTERNS = ("closed", "open")


def measure(patched: bool, size_mb: int, gets: int, read_kb: int) -> dict[str, Any]:
    """One side, in this process: CPU and wall seconds of the GETs of each pattern."""
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from workflow.local import ranged_get

    if patched:
        ranged_get.install()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    size = size_mb * 1024 * 1024
    s3.put_object(Bucket="bench", Key="source", Body=os.urandom(size))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "source"})
    length = read_kb * 1024
    offsets = [(n * (size - length)) // max(1, gets - 1) for n in range(gets)]

    def closed(offset: int) -> bytes:
        last = offset + length - 1
        answer = s3.get_object(Bucket="bench", Key="source", Range=f"bytes={offset}-{last}")
        body: bytes = answer["Body"].read()
        return body

    def open_ended(offset: int) -> bytes:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            body: bytes = answer.read(length)
            return body

    result: dict[str, Any] = {"patched": patched}
    for pattern, get in (("closed", closed), ("open", open_ended)):
        cpu, wall = time.process_time(), time.perf_counter()
        for offset in offsets:
            assert len(get(offset)) == length
        time.sleep(0.5)  # the server's threads finish the last answer; sleeping costs no CPU
        result[pattern] = {
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall - 0.5,
        }
    server.stop()
    return result


def side(patched: bool, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--side", "patched" if patched else "moto",
        "--size-mb", str(args.size_mb), "--gets", str(args.gets), "--read-kb", str(args.read_kb),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--gets", type=int, default=40)
    parser.add_argument("--read-kb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--side", choices=["patched", "moto"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.side == "patched", args.size_mb, args.gets, args.read_kb)))
        return 0

    runs: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        runs += [side(False, args), side(True, args)]
    best = {
        name: {
            pattern: min((r[pattern] for r in runs if r["patched"] == patched), key=_cpu)
            for pattern in PATTERNS
        }
        for name, patched in (("moto", False), ("patched", True))
    }
    print(f"{args.gets} ranged GETs of {args.read_kb} KiB on a {args.size_mb} MiB object")
    print(f"{'pattern':<8} {'moto CPU s':>11} {'patched CPU s':>14} {'ratio':>7} "
          f"{'moto wall s':>12} {'patched wall s':>15}")  # fmt: skip
    for pattern in PATTERNS:
        moto, patched = best["moto"][pattern], best["patched"][pattern]
        print(
            f"{pattern:<8} {moto['cpu_s']:>11.2f} {patched['cpu_s']:>14.3f} "
            f"{patched['cpu_s'] / moto['cpu_s']:>7.3f} {moto['wall_s']:>12.2f} "
            f"{patched['wall_s']:>15.3f}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ranged_get-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"args": vars(args), "runs": runs, "best": best}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


def _cpu(run: dict[str, float]) -> float:
    return run["cpu_s"]


if __name__ == "__main__":
    raise SystemExit(main())
