"""``vidflow process``, ``up`` and ``demo``: run the pipeline on a local stack, following one
video's execution to its published asset."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    engine_options,
    engine_parameters,
    failed_execution,
    fault_options,
    fault_spec,
    function_log,
    stack_ports_free,
    start_engine,
    tcp_port_pair,
    wait_until_stopped,
)
from workflow.media import subtitles
from workflow.vod.jobs import UPLOAD_PREFIX, JobPaths, execution_arn, job_id

# The upload in one PUT up to S3's limit for one: moto reassembles a multipart upload by
# copying its parts, which cost the local stack 1.7 times the CPU of one PUT for the
# bench's 277 MB source (3.7 against 2.2 CPU-s, measured).
ONE_PUT = TransferConfig(multipart_threshold=5 * 1024**3)
# ... and with its body neither signed nor checksummed: over plain http botocore otherwise
# hashes the whole body for the signature (the bench's 277 MB upload took 1.73-1.78 s so,
# 1.96-2.03 s signed), and reads it all for a CRC32, which moto does not check, before it
# sends a byte.
UPLOAD_CONFIG = Config(
    s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required"
)

if TYPE_CHECKING:
    from workflow.cli.common import Commands
    from workflow.cli.monitor import Monitor
    from workflow.local.template import Stack


def add_process(commands: Commands) -> None:
    process = commands.add_parser("process", help="process one video end to end on a local stack")
    process.add_argument("input", type=Path, help="the video file to upload and process")
    process.add_argument("--out", type=Path, required=True, help="where the HLS asset is copied")
    engine_options(process)
    fault_options(process)
    process.set_defaults(
        run=lambda args: process_file(
            args.input, args.out, engine_parameters(args), fault_spec(args)
        )
    )


def add_up(commands: Commands) -> None:
    up = commands.add_parser("up", help="serve the local stack until interrupted")
    up.add_argument("--port", type=tcp_port_pair, default=4566)
    engine_options(up)
    fault_options(up)
    up.set_defaults(run=lambda args: serve(args.port, engine_parameters(args), fault_spec(args)))


def add_demo(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="process a generated 1080p clip")
    demo.add_argument("--out", type=Path, default=Path("demo-output"))
    engine_options(demo)
    demo.set_defaults(run=lambda args: run_demo(args.out, engine_parameters(args)))


def serve(port: int, parameters: dict[str, str], faults: str | None = None) -> int:
    """``vidflow up``: print the endpoints as one JSON line and serve until interrupted."""
    if not stack_ports_free(port):
        return EXIT_USAGE
    log_file = function_log(port)
    engine = start_engine(port, parameters, log_file, faults)
    print(json.dumps({**engine.endpoints.to_dict(), "function_log": str(log_file)}), flush=True)
    wait_until_stopped()
    engine.stop()
    return 0


def process_file(
    source: Path, out: Path, parameters: dict[str, str], faults: str | None = None
) -> int:
    """``vidflow process``: upload like a user, follow the execution, copy the asset out."""
    problem = (
        _protection_problem(parameters) or _source_problem(source) or _out_problem(out, source)
    )
    staging = None if problem else _staging(out)
    if isinstance(staging, str) or problem:
        print(f"error: {problem or staging}", file=sys.stderr)
        return EXIT_USAGE
    assert staging is not None
    try:
        with tempfile.TemporaryDirectory(prefix="vidflow-") as scratch:
            engine = start_engine(
                0, parameters, Path(scratch) / "functions.log", faults, prewarm=vod_functions
            )
            try:
                return _process_with(engine, source, out, staging)
            finally:
                engine.stop()
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already where the asset went out


def vod_functions(stack: Stack) -> list[str]:
    """The functions a VOD job calls, in the order it first needs them: each is given an
    execution environment while the engine starts and the upload runs, so that no cold
    start sits on the job's path (a 60 s 1080p job made eight, 0.3-0.45 s each, about
    half of them one after another). As many transcode environments as the Map runs at
    once; images only where the stack makes them."""
    chunks = int(stack.ref("MapMaxConcurrency"))
    images = ["ImagesFunction"] if float(stack.ref("ThumbnailSeconds")) > 0 else []
    return [
        "StartJobFunction",
        "ProbeFunction",
        "PlanFunction",
        *images,
        *["TranscodeChunkFunction"] * chunks,
        "TranscodeAudioFunction",
        "PublishFunction",
    ]


def _process_with(engine: Any, source: Path, out: Path, staging: Path) -> int:
    from workflow.cli.billing import VodBilling
    from workflow.cli.monitor import Monitor

    endpoints = engine.endpoints
    s3 = boto3.client("s3", region_name=endpoints.region, config=UPLOAD_CONFIG)
    sfn = engine.client("stepfunctions")
    key = f"{UPLOAD_PREFIX}{source.name}"
    began = time.monotonic()
    s3.upload_file(str(source), endpoints.ingest_bucket, key, Config=ONE_PUT)
    etag = s3.head_object(Bucket=endpoints.ingest_bucket, Key=key)["ETag"]
    job = job_id(endpoints.ingest_bucket, key, etag)
    execution = execution_arn(endpoints.state_machine_arn, job)
    monitor = Monitor(
        sfn=sfn,
        s3=s3,
        stack=engine.stack.name,
        output_bucket=endpoints.output_bucket,
        billing=VodBilling.from_stack(engine.stack),
    )
    status = _follow(monitor, execution, job, began, engine)
    if status["status"] != "SUCCEEDED":
        cause = status.get("cause") or status["status"].lower()
        print(failed_execution(status.get("error"), cause), file=sys.stderr)
        return EXIT_FAILED
    copied = _download(s3, endpoints.output_bucket, JobPaths(job).output_prefix, staging)
    _replace_folder(out, staging)
    print(f"published {copied} files to {out} in {time.monotonic() - began:.1f} s", file=sys.stderr)
    print(out / "master.m3u8")
    return 0


def _follow(monitor: Monitor, arn: str, job: str, began: float, engine: Any) -> dict[str, Any]:
    """Wait for the execution, showing its state and work-item progress on stderr; a job
    that cannot start ends the wait with the reason."""
    sfn = monitor.sfn
    progress = _Progress(monitor, arn, job)
    display = _progress_bar if sys.stderr.isatty() else _line_per_change
    next_look, soon, ended = 0.0, False, engine.lambdas.calls_ended
    with display(began) as show:
        while True:
            now = time.monotonic()
            if now >= next_look:
                try:
                    status = dict(sfn.describe_execution(executionArn=arn))
                except sfn.exceptions.ExecutionDoesNotExist:
                    status = _not_started(engine, now - began)
                reading = progress.read(status["status"])
                if status["status"] not in ("STARTING", "RUNNING"):
                    show(reading)
                    return status
                next_look = now + (_AFTER_A_CALL if soon else _LOOK_SECONDS)
                soon = False
            # Shown every second between looks too: the bar's clock moves.
            show(reading)
            calls = engine.lambdas.wait_for_a_call(ended, min(1.0, max(0.0, next_look - now)))
            if calls > ended:
                # A job moves on only when one of its calls ends (Publish's is the last):
                # look at once, and again shortly after.
                next_look, soon, ended = 0.0, True, calls


# How often a running job is looked at when none of its calls ended: each look made
# the stack's process spend 20-60 ms of its GIL beside two ffmpeg jobs (a 1 s poll
# was 40 % of that process's time in the Map).
_LOOK_SECONDS = 3.0
# How soon after a function's call ends the job is looked at again: the interpreter
# takes a few milliseconds to move on from the call, so the look right after it often
# comes too early.
_AFTER_A_CALL = 0.1


@contextlib.contextmanager
def _progress_bar(began: float) -> Iterator[Callable[[_Reading], None]]:
    """On a terminal: the state, a bar, the percentage and the time left, redrawn in
    place and left on its own line however the wait ends; what the work items are, once,
    above it."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (
        TextColumn("[{task.fields[spent]:6.1f}s]", markup=False),
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=None),
        TaskProgressColumn(),
        TextColumn("{task.fields[left]}", markup=False),
    )
    # The bar draws (carriage returns, escape sequences): to the terminal itself.
    console = Console(file=getattr(sys.stderr, "raw", sys.stderr), highlight=False)
    with Progress(*columns, console=console, refresh_per_second=4, expand=True) as bar:
        task = bar.add_task("", total=None, spent=0.0, left="")
        shapes: set[str] = set()

        def show(reading: _Reading) -> None:
            if reading.fraction is not None:
                bar.update(task, total=1.0, completed=reading.fraction)
            left = f"~{reading.left:.0f} s left" if reading.left is not None else ""
            spent = time.monotonic() - began
            bar.update(task, description=reading.label, spent=spent, left=left)
            if reading.shape and reading.shape not in shapes:
                shapes.add(reading.shape)
                console.print(f"{reading.state}: {reading.shape}", markup=False)

        yield show


@contextlib.contextmanager
def _line_per_change(began: float) -> Iterator[Callable[[_Reading], None]]:
    """Without a terminal: a line per change of state, count or percentage, not of the
    estimate."""
    last = ""

    def show(reading: _Reading) -> None:
        nonlocal last
        if reading.line(estimate=False) != last:
            stamp = f"[{time.monotonic() - began:6.1f}s] "
            print(stamp + reading.line(), file=sys.stderr, flush=True)
        last = reading.line(estimate=False)

    yield show


# How long an upload may go without its execution before process gives up on it: far
# longer than StartJob's cold start, far shorter than Lambda's retries of a failed event.
START_BOUND_SECONDS = 60.0


def _not_started(engine: Any, waited: float) -> dict[str, Any]:
    """The state of a job whose execution does not exist yet: starting, or failed to
    start, because the upload's event failed in a function (this process's stack runs
    nothing else) or nothing came of it within the bound."""
    if engine.async_failures:
        failure = engine.async_failures[0]
        message = str(failure.error.get("errorMessage", "")) or "no message"
        return {
            "status": "NOT_STARTED",
            "error": str(failure.error.get("errorType") or "Lambda.Unknown"),
            "cause": f"{failure.function} failed on the upload's event: {message}",
        }
    if waited > START_BOUND_SECONDS:
        return {
            "status": "NOT_STARTED",
            "error": "NoExecution",
            "cause": f"no execution started within {START_BOUND_SECONDS:.0f} s of the upload; "
            "run `vidflow up` and read its function_log",
        }
    return {"status": "STARTING"}


@dataclass(frozen=True)
class _Reading:
    """What ``process`` shows of a job at one moment: its state, and in the Map its items,
    what they are, the fraction of the work done and the seconds that are likely left."""

    state: str
    items: str = ""
    shape: str = ""
    fraction: float | None = None
    left: float | None = None

    @property
    def label(self) -> str:
        """The state and items done, beside a bar that shows the rest."""
        return f"{self.state}: {self.items}" if self.items else self.state

    def line(self, estimate: bool = True) -> str:
        """All of it on one line (or all but the estimate)."""
        if not self.items:
            return self.state
        left = f", ~{self.left:.0f} s left" if estimate and self.left is not None else ""
        return f"{self.state}: {self.items}, {self.fraction or 0:.0%}{left} ({self.shape})"


class _Progress:
    """Reads how far a running VOD execution is: its state, and in the Map its items.

    Each refresh costs API calls on the same CPUs that transcode, so the history is
    read only while it can change the reading: not while the Map has items left to do;
    and the items (three S3 listings and the records that changed) every
    ``ITEMS_SECONDS``: read every second, they were 12 CPU-s of a 60 s 1080p run.
    """

    ITEMS_SECONDS = 3.0

    def __init__(self, monitor: Monitor, arn: str, job: str) -> None:
        self.monitor, self.arn, self.job = monitor, arn, job
        self.state = "starting"
        self.items_left = True
        self.map_began: float | None = None
        self.items_read: tuple[float, _Reading] | None = None

    def read(self, status: str) -> _Reading:
        if status == "STARTING":
            return _Reading("waiting for the upload event")
        if status == "NOT_STARTED":
            return _Reading("the job did not start")
        if status != "RUNNING":
            return _Reading(status.lower(), fraction=1.0 if status == "SUCCEEDED" else None)
        map_state = self.monitor.billing.map_state
        if self.state != map_state or not self.items_left:
            self.state = self.monitor.current_state(self.arn) or "starting"
        if self.state != map_state:
            self.items_read = None
            return _Reading(self.state)
        now = time.monotonic()
        if self.items_read is not None and now - self.items_read[0] < self.ITEMS_SECONDS:
            return self.items_read[1]
        p = self.monitor.progress(self.job)
        self.items_left = len(p.done) < p.items
        also = "".join(f" + {group}" for group in _grouped(p.others))
        reading = _Reading(
            map_state,
            items=f"{len(p.done)}/{p.items} items",
            shape=f"{_count(p.chunks, 'chunk')} x {_count(p.rungs, 'rung')}{also}",
            fraction=p.fraction,
            left=self._left(p.fraction),
        )
        self.items_read = (now, reading)
        return reading

    def _left(self, fraction: float) -> float | None:
        """About how many seconds the rest takes, at the pace since the Map began."""
        if self.map_began is None:
            self.map_began = time.monotonic()
        spent = time.monotonic() - self.map_began
        if not 0 < fraction < 1 or spent < 1:
            return None
        return spent * (1 - fraction) / fraction


def _protection_problem(parameters: dict[str, str]) -> str | None:
    """A protected asset copied out of a stack that stops with the command would name a
    key service that is gone, holding a key nobody has: it could never be played."""
    encryption = parameters.get("Encryption", "none")
    if encryption == "none":
        return None
    return (
        f"--parameter Encryption={encryption}: a protected asset needs its stack's key "
        "service, which stops with this command; run `vidflow up --parameter "
        f"Encryption={encryption}` and upload to it instead (docs/local.md)"
    )


def _source_problem(source: Path) -> str | None:
    """Why ``source`` cannot be processed, found before any stack starts."""
    if source.is_dir():
        return f"{source} is a folder; process takes one video file"
    if not source.exists():
        if source.is_symlink():
            return f"{source} is a link to nothing (or to itself); process takes a video file"
        return f"no such file: {source}"
    if not source.is_file():
        return f"{source} is not a regular file (a pipe, a device); process takes a video file"
    try:
        source.name.encode()
    except UnicodeEncodeError:
        # Bytes the file system holds that are no UTF-8 cannot be an S3 key (nor printed).
        shown = str(source).encode(errors="backslashreplace").decode()
        return f"{shown} has a name that is not UTF-8, which an S3 key must be: rename it"
    if "\n" in source.name:
        # S3 takes one in a key; the local stack's S3 (moto) answers such a key 404.
        shown = str(source).replace("\n", "\\n")
        return (
            f"{shown} has a line break in its name, which the local S3 cannot take in a "
            "key: rename it"
        )
    if subtitles.is_sidecar(source.name):
        return (
            f"{source} is a sidecar (subtitles), not a video: upload it "
            "beside its video to a stack (vidflow up)"
        )
    try:
        source.open("rb").close()
    except OSError as exc:
        return f"cannot read {source}: {exc.strerror or exc}"
    return None


def _out_problem(out: Path, source: Path) -> str | None:
    """Why ``--out`` cannot take the asset: a file, a folder of something else, or one
    that holds the input or the current folder. A previous asset there is replaced whole,
    never merged with."""
    loop = f"--out {out} is a link that leads to itself; give a folder for the asset"
    if out.is_symlink() and not out.exists():
        # (A loop, or a link to nothing: Python 3.13's resolve() no longer raises on one.)
        return loop
    try:
        whole = out.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of links further up
        return loop
    if whole == Path.cwd() or whole in Path.cwd().parents:
        return f"--out {out} is the current folder or holds it; give a folder for the asset"
    if whole == source.resolve().parent or whole in source.resolve().parents:
        return f"--out {out} holds the input, and is replaced whole; give another folder"
    if out.is_file() or (out.exists() and not out.is_dir()):
        return f"--out {out} is a file; give a folder for the asset"
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        # Replaced whole by a rename, which a folder one may not write refuses: said
        # now, not once the job has run and its asset is lost with the refusal.
        return f"--out {out} is not writable, and is replaced whole; give another folder"
    if out.is_dir() and any(out.iterdir()) and not _is_asset(out):
        return (
            f"--out {out} holds files that are not a vidflow asset; "
            "give an empty or new folder (a previous asset there is replaced)"
        )
    if out.is_dir() and (others := _not_of_the_asset(out)):
        # Replaced whole, they would go with it: a page or notes put beside the asset.
        return (
            f"--out {out} holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}, "
            "which the vidflow asset there does not name, and is replaced whole; move "
            "them, or give another folder"
        )
    return None


def _is_asset(folder: Path) -> bool:
    """Whether ``folder`` holds a published vidflow asset: its manifest names the schema."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith(
        "vidflow.manifest/"
    )


def _not_of_the_asset(folder: Path) -> list[str]:
    """What in the asset ``folder`` its manifest names no file under: whatever is not the
    manifest itself or the first part of a path the manifest holds (a rung's folder, the
    master, the DASH manifest, the images)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    named = {"manifest.json"}
    pending: list[Any] = [manifest]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            named.add(value.split("/", 1)[0])
    return sorted(entry.name for entry in folder.iterdir() if entry.name not in named)


def _staging(out: Path) -> Path | str:
    """A fresh folder beside ``out`` for the asset to be copied into (made before the job,
    so that a place the asset cannot go is said at once), or why there can be none."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as exc:
        return f"--out {out}: cannot write to {out.parent}: {exc.strerror or exc}"
    new.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide the asset from a web server
    return new


def _umask() -> int:
    """The process's umask, read without setting it (os.umask would, for every thread)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Umask:"))[6:], 8)
    except (OSError, StopIteration, ValueError):
        return 0o022


def _replace_folder(out: Path, new: Path) -> None:
    """Swap the filled folder ``new`` in for ``out``: a previous asset is replaced whole,
    and a failure leaves ``out`` as it was."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
        new.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _grouped(names: Sequence[str]) -> list[str]:
    """Work items named, or counted by kind where a kind has several (four hours of audio
    are 120 pieces: one count, not 120 names)."""
    kinds = Counter(name.split("-")[0] for name in names)
    shown: list[str] = []
    for name in names:
        kind = name.split("-")[0]
        label = f"{kinds[kind]} {kind} items" if kinds[kind] > 1 else name
        if label not in shown:
            shown.append(label)
    return shown


def _download(s3: Any, bucket: str, prefix: str, out: Path) -> int:
    """Copy every object under ``prefix`` into ``out``, several at once.

    A plain GET per object: ``download_file`` starts a transfer manager for each, which
    cost 2.7 times the CPU for 400 small segments (5.6 against 2.1 CPU-s, measured).
    """
    out.mkdir(parents=True, exist_ok=True)
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]

    def copy(key: str) -> None:
        target = out / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=key)["Body"], handle)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(copy, keys))
    return len(keys)


def run_demo(out: Path, parameters: dict[str, str]) -> int:
    """``vidflow demo``: generate a 24 s 1080p clip with audio and process it."""
    from workflow.local.binaries import ffmpeg_binary

    with tempfile.TemporaryDirectory(prefix="vidflow-demo-") as scratch:
        clip = Path(scratch) / "demo-1080p.mp4"
        # Said before the clip is made (17 s), as process_file would say it after.
        problem = _protection_problem(parameters) or _out_problem(out, clip)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        subprocess.run(
            [
                ffmpeg_binary(),
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30:duration=24",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=24",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                str(clip),
            ],
            check=True,
        )
        print(f"processing a generated 24 s 1080p clip into {out}/", file=sys.stderr)
        return process_file(clip, out, parameters)
