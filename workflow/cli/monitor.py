"""What the console and ``vidflow executions`` show, read through the public AWS APIs.

Everything comes from Step Functions (state machines, executions, their histories) and
S3 (a job's plan, per-item results and progress, and manifest), through boto3 clients. The
same code reads the local stack and a deployed one: only the clients' endpoint differs.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workflow.cli import dashboard
from workflow.cli.billing import VodBilling
from workflow.errors import ConfigurationError
from workflow.keys import tokens
from workflow.live.paths import StreamPaths, is_stream_id
from workflow.media.audio_pieces import AudioPiece
from workflow.media.chunks import chunk_item
from workflow.media.images import image_pieces, thumbnail_count
from workflow.storage import Bucket
from workflow.vod.jobs import JobPaths
from workflow.vod.progress import recorded_fraction
from workflow.vod.records import ImagesPiece, WorkItem

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _seconds(start: Any, stop: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(stop, datetime):
        return round((stop - start).total_seconds(), 3)
    return None


# How much of its work a running item (no result yet) can count for.
RUNNING_MOST = 0.99


# Live streams looked up at once for the console's list (botocore's pool holds 10).
STREAM_LOOKUPS = 10


@dataclass(frozen=True)
class JobProgress:
    """How far a VOD job's Map is: its work items (chunks x rungs, plus the others by
    name), those with a result, those that failed, and how far those running are."""

    items: int
    chunks: int
    rungs: int
    others: list[str]
    done: list[str]
    failed: list[str]
    # Each item's share of the encoding work, by name (all equal where the plan is not
    # timed): a chunk's seconds times its rungs, the audio and images a quarter of the video.
    work: dict[str, float] = field(default_factory=dict)
    # How far each item without a result is, 0 to 1, as its encode last wrote.
    running: dict[str, float] = field(default_factory=dict)
    # A per-title ladder's analysis items with a result (not among ``items``: they run
    # in their own Map, before the plan's).
    analysed: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """How much of the work is done, 0 to 1: the items done, and the running ones' part."""
        total = sum(self.work.values()) or self.items
        # An item counts whole only once it has a result: an encode at its end still has
        # its upload and its result to write, so a running one counts at most RUNNING_MOST.
        running = {name: min(share, RUNNING_MOST) for name, share in self.running.items()}
        shares = running | dict.fromkeys(self.done, 1.0)
        unweighed = 0.0 if self.work else 1.0
        done = sum(self.work.get(name, unweighed) * share for name, share in shares.items())
        return min(1.0, done / total) if total else 0.0


@dataclass
class Monitor:
    """Read-only views of one vidflow stack's executions and outputs."""

    sfn: Any
    s3: Any
    stack: str
    output_bucket: str
    # What a VOD job is billed for, from the template: prices its cost estimate.
    billing: VodBilling
    # The functions' log group and a CloudWatch Logs client: the metrics panel's source.
    logs: Any = None
    function_log_group: str | None = None
    # The stack's playback secret: the player gets a token for a protected asset or stream.
    playback: Any = None
    _described: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A work item's result record is written once: read each once, not on every refresh.
    _results: dict[str, Any] = field(default_factory=dict)
    _plans: dict[str, Any] = field(default_factory=dict)
    _analyses: dict[str, int] = field(default_factory=dict)
    # A running item's progress record, read again only once its ETag changes.
    _running: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def output(self) -> Bucket:
        return Bucket(self.s3, self.output_bucket)

    def machines(self) -> list[dict[str, str]]:
        """The stack's state machines (named ``<stack>-...``)."""
        found = []
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                if machine["name"].startswith(f"{self.stack}-"):
                    found.append(
                        {
                            "name": machine["name"],
                            "arn": machine["stateMachineArn"],
                            "type": machine.get("type", "STANDARD"),
                        }
                    )
        return found

    def executions(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest executions of every state machine of the stack, newest first.

        Express executions are listed where the API lists them (the local stack does;
        on AWS their history is in CloudWatch Logs only).
        """
        rows = []
        for machine in self.machines():
            arguments: dict[str, Any] = {"stateMachineArn": machine["arn"], "maxResults": limit}
            if status:
                arguments["statusFilter"] = status
            try:
                listed = self.sfn.list_executions(**arguments)["executions"]
            except self.sfn.exceptions.StateMachineTypeNotSupported:
                continue
            rows += [self._row(machine, execution) for execution in listed]
        rows.sort(key=lambda r: r["start"] or "", reverse=True)
        return rows[:limit]

    def named(self, name: str) -> str | None:
        """The ARN of the standard execution called ``name``, asked of each machine of the
        stack, however long ago it ran (a listing holds the newest only: a live stream's
        executions, one a segment, push a job out of it within minutes)."""
        for machine in self.machines():
            if machine["type"] != "STANDARD":
                continue
            arn = f"{machine['arn'].replace(':stateMachine:', ':execution:', 1)}:{name}"
            try:
                self.describe(arn)
            except (self.sfn.exceptions.ExecutionDoesNotExist, self.sfn.exceptions.InvalidArn):
                continue
            return arn
        return None

    def _row(self, machine: dict[str, str], execution: dict[str, Any]) -> dict[str, Any]:
        described = self.describe(execution["executionArn"])
        return {
            "name": execution["name"],
            "arn": execution["executionArn"],
            "machine": machine["name"],
            "status": described["status"],
            "start": _iso(described.get("startDate")),
            "stop": _iso(described.get("stopDate")),
            "seconds": _seconds(described.get("startDate"), described.get("stopDate")),
            "input_key": _input_key(described.get("input")),
            "error": described.get("error"),
            "cause": described.get("cause"),
        }

    def describe(self, arn: str) -> dict[str, Any]:
        """``DescribeExecution``, remembered once the execution has finished."""
        with self._lock:
            cached = self._described.get(arn)
        if cached is not None:
            return cached
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            with self._lock:
                self._described[arn] = described
        return described

    def history(self, arn: str) -> list[dict[str, Any]]:
        events = []
        paginator = self.sfn.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=arn):
            events += page["events"]
        return events

    def execution(self, arn: str) -> dict[str, Any]:
        """Everything the execution page shows about one execution."""
        described = self.describe(arn)
        machine = self.sfn.describe_state_machine_for_execution(executionArn=arn)
        events = self.history(arn)
        states = state_runs(events)
        summary = self._row({"name": machine["name"]}, {**described, "executionArn": arn})
        detail: dict[str, Any] = {
            "summary": summary,
            "definition": json.loads(machine["definition"]),
            "states": states,
            "timeline": timeline(states),
            "history": [_event(e) for e in events],
            "failed_state": next(
                (name for name, run in states.items() if run["status"] == "FAILED"), None
            ),
        }
        job = _job_id(described)
        if job is not None:
            detail.update(self.job(job, described))
        stream = _stream(described)
        if stream is not None:
            master = f"live/{stream}/live.m3u8"
            detail["player"] = {
                "live": self.output.exists(master) and master,
                "stream": stream,
                "token": self.playback_token(StreamPaths(stream).asset),
            }
        return detail

    def playback_token(self, asset: str) -> str | None:
        """A token for the console's own player (an hour, viewer ``console``); None where
        the secret cannot be read (no stack secret, no permission), or ``asset`` is no
        asset's name (an execution started by hand with any input)."""
        if self.playback is None:
            return None
        try:
            secret = self.playback.get()
            return tokens.sign(secret, tokens.Grant(asset, int(time.time()) + 3600, "console"))
        except (BotoCoreError, ClientError, ConfigurationError, ValueError):
            return None  # the player then plays clear assets only

    def job(self, job: str, described: dict[str, Any]) -> dict[str, Any]:
        """A VOD job's progress, per-item bars, manifest, cost and player, from S3."""
        paths = JobPaths(job)
        progress = self.progress(job)
        results = self._item_results(paths, progress.analysed + progress.done)
        transcode = {"items": progress.items, "done": len(progress.done)}
        with self._lock:
            plan = self._plans.get(job) or {}
        per_title = plan.get("ladder", {}).get("mode") == "per-title"
        manifest = self._json(paths.manifest_key)
        failure = self._json(paths.failure_key) if described["status"] != "RUNNING" else None
        return {
            "job_id": job,
            "progress": transcode
            | {
                "failed": progress.failed,
                # Each Map's own count, by the plan key its items are read from.
                "maps": {
                    "items_key": transcode,
                    "analysis_key": {
                        "items": self._analysis_items(paths) if per_title else 0,
                        "done": len(progress.analysed),
                    },
                },
            },
            "item_bars": [
                _item_bar(name, record)
                for name, record in sorted(results.items())
                if "wall_seconds" in record
            ],
            "manifest": manifest,
            "failure": failure,
            "cost": self.cost(results),
            "player": (
                {"master": paths.master_key, "token": self.playback_token(job)}
                if manifest
                else None
            ),
        }

    def progress(self, job: str) -> JobProgress:
        """A job's work items, which are done or failed, and how far the others are: its
        plan, read once, the names of its result and error records (listed, not read), and
        the progress records of items without a result."""
        paths = JobPaths(job)
        with self._lock:
            plan = self._plans.get(job)
        if plan is None:
            plan = self._json(paths.plan_key)
            if plan is not None:
                with self._lock:
                    self._plans[job] = plan
        finished = sorted(PurePosixPath(k).stem for k in self.output.keys(paths.results_prefix))
        errors = sorted(PurePosixPath(k).stem for k in self.output.keys(paths.errors_prefix))
        failed = [e for e in errors if e not in finished]
        if plan is None:
            return JobProgress(0, 0, 0, [], finished, failed)
        others = _audio_items(plan) + plan.get("extras", [])
        planned = {chunk_item(chunk["index"]) for chunk in plan["chunks"]} | set(others)
        done = [name for name in finished if name in planned]
        return JobProgress(
            items=len(plan["chunks"]) + len(others),
            chunks=len(plan["chunks"]),
            rungs=len(plan["renditions"]),
            others=others,
            done=done,
            failed=failed,
            work=_work(plan, others),
            running=self._running_items(paths, done),
            analysed=[name for name in finished if name not in planned],
        )

    def _analysis_items(self, paths: JobPaths) -> int:
        """How many items a per-title ladder's analysis has (0 without one): read once."""
        with self._lock:
            count = self._analyses.get(paths.analysis_items_key)
        if count is None:
            items = self._json(paths.analysis_items_key)
            if items is None:
                return 0
            count = len(items)
            with self._lock:
                self._analyses[paths.analysis_items_key] = count
        return count

    def _running_items(self, paths: JobPaths, done: list[str]) -> dict[str, float]:
        """How far each item without a result is, by its progress record."""
        running = {}
        for listed in self.output.objects(paths.progress_prefix):
            key, name = listed["Key"], PurePosixPath(listed["Key"]).stem
            if name in done:
                continue
            with self._lock:
                etag, fraction = self._running.get(key, (None, None))
            if etag != listed["ETag"]:
                fraction = recorded_fraction(self._json(key))
                with self._lock:
                    self._running[key] = (listed["ETag"], fraction)
            if fraction is not None:
                running[name] = fraction
        return running

    def _item_results(self, paths: JobPaths, names: list[str]) -> dict[str, Any]:
        """The result records of these work items: each is written once, so read once."""
        results = {}
        for name in names:
            key = paths.result_key(name)
            with self._lock:
                record = self._results.get(key)
            if record is None:
                record = self._json(key)
                if record is not None:
                    with self._lock:
                        self._results[key] = record
            if record:
                results[name] = record
        return results

    def current_state(self, arn: str) -> str | None:
        """The state an execution entered last (by event id: moto may ignore
        ``reverseOrder``), or None before it enters one."""
        events = self.sfn.get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=100
        )["events"]
        entered = [e for e in events if "stateEnteredEventDetails" in e]
        if not entered:
            return None
        return str(max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"]["name"])

    def cost(self, results: dict[str, Any]) -> dict[str, float]:
        """An estimate from the measured per-item times, priced as the template runs them.

        Subtitle items record no wall time: their calls and transitions count, their
        (sub-second) compute does not."""
        return self.billing.estimate(
            {name: float(r.get("wall_seconds", 0.0)) for name, r in results.items()}
        )

    def _json(self, key: str) -> Any:
        """The JSON object at ``key`` in the output bucket, or None if it is not there."""
        try:
            return self.output.get_json(key)
        except (self.s3.exceptions.NoSuchKey, self.s3.exceptions.ClientError):
            return None

    def metrics(self, hours: int = 24) -> dict[str, Any]:
        """The metrics panel over the last ``hours``, from the functions' EMF records."""
        now_ms = int(time.time() * 1000)
        if self.logs is None or self.function_log_group is None:
            return dashboard.summarise([], now_ms, hours)
        since = now_ms - hours * dashboard.HOUR_MS
        records = dashboard.read_records(self.logs, self.function_log_group, since)
        return dashboard.summarise(records, now_ms, hours)

    def streams(self) -> list[dict[str, Any]]:
        """Live streams with published playlists, and whether each has closed."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.output_bucket, Prefix="live/", Delimiter="/"
        )
        names = [
            p["Prefix"].split("/")[1] for page in pages for p in page.get("CommonPrefixes", [])
        ]
        # Every stream an operator ran is kept until deleted (a season passes 1,000, one
        # list's worth): two HEADs each, at once, not one after another on every refresh.
        with ThreadPoolExecutor(STREAM_LOOKUPS) as pool:
            found = pool.map(self.stream, names)
            return [stream for stream in found if stream is not None]

    def stream(self, stream: str) -> dict[str, Any] | None:
        """A live stream's playlist, whether it has closed, and a token for its player;
        None until it has a playlist, or for a name no stream has (a rung's folder,
        ``game/360p``, has a playlist of that name too)."""
        paths = StreamPaths(stream)
        if not is_stream_id(stream) or not self.output.exists(paths.live_master_key):
            return None
        return {
            "stream": stream,
            "live": paths.live_master_key,
            "ended": self.output.exists(paths.master_key),
            "token": self.playback_token(paths.asset),
        }


def _item_bar(name: str, record: dict[str, Any]) -> dict[str, Any]:
    finished = datetime.fromisoformat(record["finished_at"])
    return {
        "label": name,
        "kind": "item",
        "start": finished.timestamp() - float(record["wall_seconds"]),
        "end": finished.timestamp(),
        "status": "SUCCEEDED",
    }


def state_runs(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per state of the top-level machine: status, first entry, last exit, input, output,
    retries and error, from the history events (as AWS and the local stack write them)."""
    runs: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for event in events:
        kind = event["type"]
        at = event["timestamp"].timestamp()
        details = event_details(event)
        if kind.endswith("StateEntered"):
            current = details["name"]
            run = runs.setdefault(
                current, {"status": "RUNNING", "start": at, "end": None, "attempts": 0}
            )
            run["input"] = details.get("input")
            if kind == "FailStateEntered":
                run["status"] = "FAILED"
        elif kind.endswith("StateExited"):
            run = runs[details["name"]]
            run["end"] = at
            run["output"] = details.get("output")
            if run["status"] == "RUNNING":
                run["status"] = "SUCCEEDED"
        elif kind in ("TaskScheduled", "MapRunStarted") and current is not None:
            runs[current]["attempts"] += 1
        elif kind.endswith("Failed") and current is not None and kind != "ExecutionFailed":
            runs[current]["error"] = details.get("error")
            runs[current]["cause"] = details.get("cause")
            runs[current]["status"] = "FAILED"
        elif kind in ("TaskSucceeded", "MapRunSucceeded") and current is not None:
            runs[current]["status"] = "RUNNING"
            runs[current].pop("error", None)
    return runs


def timeline(states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per state run, in order of entry."""
    bars = [
        {
            "label": name,
            "kind": "state",
            "start": run["start"],
            "end": run["end"],
            "status": run["status"],
        }
        for name, run in states.items()
    ]
    return sorted(bars, key=lambda bar: bar["start"])


def event_details(event: dict[str, Any]) -> dict[str, Any]:
    """An event's one ``...EventDetails`` member (empty for events without one)."""
    found: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
    return found


def _event(event: dict[str, Any]) -> dict[str, Any]:
    details = event_details(event)
    return {
        "id": event["id"],
        "type": event["type"],
        "at": event["timestamp"].timestamp(),
        "details": details,
    }


def _input(described: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(described.get("input") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _input_key(raw: str | None) -> str | None:
    source = _input({"input": raw}).get("source")
    return source.get("key") if isinstance(source, dict) else None


def _job_id(described: dict[str, Any]) -> str | None:
    job = _input(described).get("job_id")
    return job if isinstance(job, str) else None


def _stream(described: dict[str, Any]) -> str | None:
    stream = _input(described).get("stream")
    return stream if isinstance(stream, str) else None


def _work(plan: dict[str, Any], others: list[str]) -> dict[str, float]:
    """Each work item's share of a timed plan's encoding; empty if the plan is not timed."""
    duration = plan["facts"].get("duration")
    chunks = plan["chunks"]
    if not duration or not all("start" in c and "end" in c for c in chunks):
        return {}
    rungs = len(plan["renditions"])
    work = {chunk_item(c["index"]): (c["end"] - c["start"]) * rungs for c in chunks}
    for data in plan.get("audio_pieces", []):
        piece = AudioPiece.from_dict(data)
        work[piece.item] = piece.duration / 4
    # An images piece's keyframes, by its span of the video; where the plan has one
    # images item (a short video, a source read from its start, a plan from before the
    # pieces), it is the whole.
    spans = {"images": duration}
    interval = plan.get("thumbnail_seconds")
    if interval and any(name.startswith("images-") for name in others):
        for first, ticks in image_pieces(thumbnail_count(duration, interval)):
            name = WorkItem("images", images=ImagesPiece(first, ticks)).name
            spans[name] = min(ticks * interval, duration - first * interval)
    for name in others:
        work.setdefault(name, (duration if name == "audio" else spans.get(name, 0.4)) / 4)
    return work


def _audio_items(plan: dict[str, Any]) -> list[str]:
    """The audio's items: its pieces, or the one ``audio`` of a plan made before them."""
    if "audio_pieces" in plan:
        return [AudioPiece.from_dict(piece).item for piece in plan["audio_pieces"]]
    return ["audio"] if plan["facts"]["audio"] else []
