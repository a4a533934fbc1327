"""``vidflow executions``: the console's data as tables and a live progress line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from workflow.cli.common import failed_execution
from workflow.cli.monitor import Monitor, event_details


def table(rows: list[list[str]], out: TextIO) -> None:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _s(value: Any) -> str:
    return "" if value is None else f"{float(value):.1f} s"


def list_executions(monitor: Monitor, status: str | None, out: TextIO = sys.stdout) -> int:
    rows = [["STATUS", "NAME", "STATE MACHINE", "INPUT", "STARTED", "DURATION", "ERROR"]]
    for e in monitor.executions(status):
        started = datetime.fromisoformat(e["start"]).strftime("%H:%M:%S") if e["start"] else ""
        rows.append(
            [e["status"], e["name"], e["machine"], e["input_key"] or "", started,
             _s(e["seconds"]), e["error"] or ""]
        )  # fmt: skip
    if len(rows) == 1:
        print("no executions", file=out)
        return 0
    table(rows, out)
    return 0


def resolve(monitor: Monitor, name_or_arn: str) -> str | None:
    """An execution's ARN from its ARN or its name."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    listed = (e["arn"] for e in monitor.executions() if e["name"] == name_or_arn)
    return monitor.named(name_or_arn) or next(listed, None)


def show(monitor: Monitor, arn: str, out: TextIO = sys.stdout) -> int:
    detail = monitor.execution(arn)
    s = detail["summary"]
    print(f"{s['name']}  {s['status']}  {s['machine']}  {s['input_key'] or ''}", file=out)
    print(f"started {s['start']}  duration {_s(s['seconds'])}", file=out)
    if s["error"]:
        where = f" in {detail['failed_state']}" if detail["failed_state"] else ""
        print(failed_execution(s["error"], s["cause"], where), file=out)
    rows = [["STATE", "STATUS", "ATTEMPTS", "DURATION"]]
    for name in detail["definition"]["States"]:
        run = detail["states"].get(name)
        if run is None:
            rows.append([name, "NOT_RUN", "", ""])
            continue
        seconds = run["end"] - run["start"] if run["end"] else None
        rows.append([name, run["status"], str(run["attempts"] or ""), _s(seconds)])
    table(rows, out)
    if detail.get("progress"):
        p = detail["progress"]
        print(f"work items: {p['done']} of {p['items']} done", file=out)
    manifest = detail.get("manifest")
    if manifest:
        rungs = ", ".join(
            f"{r['name']} {r['average_bandwidth'] // 1000} kbps" for r in manifest["renditions"]
        )
        print(f"published: {manifest['duration']:.1f} s, {rungs}", file=out)
        print(f"cost estimate: ${detail['cost']['total']:.4f}", file=out)
    return 0 if s["status"] in ("SUCCEEDED", "RUNNING") else 1


def history(monitor: Monitor, arn: str, out: TextIO = sys.stdout) -> int:
    events = monitor.history(arn)
    if not events:
        return 0
    t0 = events[0]["timestamp"]
    rows = [["ID", "+SECONDS", "TYPE", "STATE / ERROR"]]
    for e in events:
        details = event_details(e)
        what = details.get("name") or details.get("error") or ""
        offset = (e["timestamp"] - t0).total_seconds()
        rows.append([str(e["id"]), f"{offset:.3f}", e["type"], str(what)])
    table(rows, out)
    return 0


def watch(
    monitor: Monitor,
    arn: str,
    out: TextIO = sys.stdout,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """One line per change until the execution ends; exit 0 only if it succeeded."""
    last = ""
    while True:
        detail = monitor.execution(arn)
        status = detail["summary"]["status"]
        states = " ".join(
            f"{name}:{run['status'].lower()}" for name, run in detail["states"].items()
        )
        progress = detail.get("progress")
        items = f" items {progress['done']}/{progress['items']}" if progress else ""
        line = f"{status.lower():9s} {states}{items}"
        if line != last:
            print(line, file=out, flush=True)
            last = line
        if status != "RUNNING":
            if detail["summary"]["error"]:
                summary = detail["summary"]
                print(failed_execution(summary["error"], summary["cause"]), file=out)
            return 0 if status == "SUCCEEDED" else 1
        sleep(interval)
