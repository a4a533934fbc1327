"""What every step gets from its Lambda: AWS clients, a clock, its deadline, a scratch
folder, and the one way an execution is started."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Seconds left before the function is stopped.
Deadline = Callable[[], float]
# Seconds since the epoch: where timing decides what a step does (live gaps, leases),
# tests pass their own and step it.
Clock = Callable[[], float]


@dataclass(frozen=True)
class Clients:
    """The AWS clients a step may use, and its clock; tests pass their own."""

    s3: Any
    sfn: Any = None
    dynamodb: Any = None
    events: Any = None
    # Protected playback: KMS unwraps content keys, Secrets Manager holds the token secret.
    kms: Any = None
    secrets: Any = None
    clock: Clock = field(default=time.time)

    def utc_now(self) -> str:
        """The clock's time as a record's timestamp (ISO 8601, UTC, milliseconds)."""
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")


def event_time(text: str | None) -> datetime | None:
    """An event's time (S3's ``eventTime``, a source's ``uploaded_at``) as an aware
    datetime: ISO 8601, with ``Z``, an offset, or none (UTC, as S3's are, never the
    machine's local time); None for none, or for text that is no time (an event written
    by hand), which nothing that only measures or compares with it may fail on."""
    try:
        at = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


SCRATCH_PREFIX = "vidflow-"
_cleared = threading.Lock()
_stale: list[bool] = [True]


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A fresh temporary folder, removed afterwards: a warm Lambda keeps its /tmp."""
    _clear_stale_scratch()
    path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _clear_stale_scratch() -> None:
    """Remove the scratch folders an invocation killed in this execution environment
    left, before this process's first: Lambda stops a function past its timeout (or out
    of memory) without its ``finally``, then starts the runtime again in the same
    environment, /tmp as it was, and the retry Step Functions sends lands there with a
    dead encode's files filling the /tmp it needs. Only in a Lambda environment, which
    runs one invocation at a time: elsewhere the temporary folder is shared."""
    with _cleared:
        if not _stale or not os.environ.get("LAMBDA_TASK_ROOT"):
            _stale.clear()
            return
        _stale.clear()
        for stale in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)


def memory_mb() -> int:
    """The memory this function runs with (Lambda sets it; 0 outside Lambda)."""
    return int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0)


def time_left(context: Any) -> Deadline:
    """Seconds left in this invocation, from a Lambda context."""
    return lambda: context.get_remaining_time_in_millis() / 1000


def start_once(clients: Clients, state_machine_arn: str, name: str, payload: Any) -> bool:
    """Start the execution ``name`` unless it exists: False for a duplicate event.

    Standard workflows refuse a name they ran (ExecutionAlreadyExists); Express ones run
    it again, so what they publish must make a duplicate harmless.
    """
    try:
        clients.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
        )
    except clients.sfn.exceptions.ExecutionAlreadyExists:
        return False
    return True
