"""Faults injected into the local engine on purpose, to prove the workflow survives them.

Off unless asked for, with ``VIDFLOW_FAULTS`` or ``--fault``: a comma-separated list of
``TARGET:KIND[:COUNT]``. TARGET is a function (logical id or code folder, e.g.
``TranscodeChunkFunction`` or ``transcode_chunk``) or ``s3put`` (any S3 PutObject made
by a function). KIND is one of:

- ``transient`` — the function raises ``TransientError`` (S3 5xx, a network blip);
- ``throttle`` — Lambda answers ``Lambda.TooManyRequestsException`` without running it;
- ``timeout`` — Lambda reports ``Sandbox.Timedout``, as when a function runs out of time;
- ``kill`` — the function's ffmpeg is killed (SIGKILL) shortly after it starts;
- ``permanent`` — the function raises ``InjectedFaultError``, which is never retried;
- ``slowdown`` (``s3put`` only) — S3 answers 503 SlowDown.

COUNT (default 1) is how many calls fail before the target behaves again.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from workflow.errors import TransientError, VidflowError

FUNCTION_KINDS = ("transient", "throttle", "timeout", "kill", "permanent")
S3_KINDS = ("slowdown",)


class InjectedFaultError(VidflowError):
    """A permanent fault injected by the local engine's fault switch."""


class FaultSpecError(ValueError):
    """A ``--fault`` or ``VIDFLOW_FAULTS`` entry that cannot be understood."""


@dataclass
class Fault:
    target: str
    kind: str
    remaining: int


def parse(spec: str) -> list[Fault]:
    """``"transcode_chunk:kill:1,s3put:slowdown:2"`` -> faults; empty spec, no faults."""
    faults = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            raise FaultSpecError(f"fault {entry!r} is not TARGET:KIND[:COUNT]")
        target, kind = parts[0], parts[1]
        kinds = S3_KINDS if target == "s3put" else FUNCTION_KINDS
        if kind not in kinds:
            raise FaultSpecError(f"fault {entry!r}: {target} takes {', '.join(kinds)}")
        try:
            count = int(parts[2]) if len(parts) == 3 else 1
        except ValueError:
            raise FaultSpecError(f"fault {entry!r}: COUNT must be a whole number") from None
        faults.append(Fault(target, kind, count))
    return faults


class FaultPlan:
    """The armed faults of one engine; each fires COUNT times, then is spent."""

    def __init__(self, faults: list[Fault], resolve: Callable[[str], str | None]) -> None:
        self._lock = threading.Lock()
        self._faults = []
        for fault in faults:
            if fault.target != "s3put":
                logical_id = resolve(fault.target)
                if logical_id is None:
                    raise FaultSpecError(f"fault target {fault.target!r} is no function")
                fault.target = logical_id
            self._faults.append(fault)
        self.fired: list[tuple[str, str]] = []
        self._kills: dict[str, int] = {}

    def _take(self, target: str, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.target == target and fault.kind in kinds and fault.remaining > 0:
                    fault.remaining -= 1
                    self.fired.append((target, fault.kind))
                    return fault.kind
        return None

    def before_invoke(self, logical_id: str) -> dict[str, Any] | None:
        """A Lambda error payload to answer instead of running the function, if armed."""
        kind = self._take(logical_id, ("throttle", "timeout"))
        if kind == "throttle":
            return _payload("Lambda.TooManyRequestsException", "Rate exceeded (injected)")
        if kind == "timeout":
            return _payload("Sandbox.Timedout", "Task timed out (injected)")
        return None

    def during_invoke(self, logical_id: str) -> Callable[[], None] | None:
        """Something to do once the handler is running: raise, or kill its ffmpeg."""
        kind = self._take(logical_id, ("transient", "permanent", "kill"))
        if kind == "transient":
            return _raise(TransientError("injected transient fault"))
        if kind == "permanent":
            return _raise(InjectedFaultError("injected permanent fault"))
        if kind == "kill":
            with self._lock:
                self._kills[logical_id] = self._kills.get(logical_id, 0) + 1
        return None

    def on_ffmpeg_start(self, process: subprocess.Popen[bytes], logical_id: str | None) -> None:
        """Kill this ffmpeg shortly after it starts if its function has a kill armed."""
        with self._lock:
            if not logical_id or not self._kills.get(logical_id):
                return
            self._kills[logical_id] -= 1
        threading.Timer(0.3, process.kill).start()

    def on_s3_put(self) -> None:
        """Fail an S3 PutObject made by a function with 503 SlowDown, if armed."""
        if self._take("s3put", S3_KINDS):
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                    "ResponseMetadata": {
                        "HTTPStatusCode": 503,
                        "HTTPHeaders": {},
                        "HostId": "",
                        "RequestId": "",
                        "RetryAttempts": 0,
                    },
                },
                "PutObject",
            )


def _payload(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _raise(exc: Exception) -> Callable[[], None]:
    def fail() -> None:
        raise exc

    return fail
