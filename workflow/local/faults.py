"""Faults injected into the local engine on purpose, to prove the workflow survives them.

Off unless asked for, with ``VIDFLOW_FAULTS`` or ``--fault``: a comma-separated list of
``TARGET:KIND[:COUNT]``. TARGET is a function (logical id or code folder, e.g.
``TranscodeChunkFunction`` or ``transcode_chunk``), ``s3put`` (any S3 PutObject made
by a function) or ``s3get`` (any ranged S3 GetObject made by a function's ffmpeg).
KIND is one of:

- ``transient`` — the invocation fails with ``TransientError`` (S3 5xx, a network blip);
- ``throttle`` — Lambda answers ``Lambda.TooManyRequestsException`` without running it;
- ``timeout`` — Lambda reports ``Sandbox.Timedout``, as when a function runs out of time;
- ``kill`` — the function's ffmpeg is killed (SIGKILL) as soon as it runs;
- ``permanent`` — the invocation fails with ``InjectedFaultError``, which is never retried;
- ``slowdown`` (``s3put`` only) — S3 itself answers a function's PutObject with 503 SlowDown;
- ``reset`` (``s3get`` only) — S3 sends half of a ranged GET's body, then drops the
  connection, as a read of a large object sometimes ends on AWS.

COUNT (default 1) is how many calls fail before the target behaves again. The faults act
from outside the function, where Lambda and S3 would: its code is the built artefact,
untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FUNCTION_KINDS = ("transient", "throttle", "timeout", "kill", "permanent")
S3_KINDS = {"s3put": ("slowdown",), "s3get": ("reset",)}


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
        kinds = S3_KINDS.get(target, FUNCTION_KINDS)
        if kind not in kinds:
            raise FaultSpecError(f"fault {entry!r}: {target} takes {', '.join(kinds)}")
        count = (int(parts[2]) if parts[2].isdigit() else 0) if len(parts) == 3 else 1
        if count < 1:  # (0 or less armed a fault that never fires, and said nothing)
            raise FaultSpecError(f"fault {entry!r}: COUNT must be a whole number from 1")
        faults.append(Fault(target, kind, count))
    return faults


class FaultPlan:
    """The armed faults of one engine; each fires COUNT times, then is spent."""

    def __init__(self, faults: list[Fault], resolve: Callable[[str], str | None]) -> None:
        self._lock = threading.Lock()
        self._faults = []
        for fault in faults:
            if fault.target not in S3_KINDS:
                logical_id = resolve(fault.target)
                if logical_id is None:
                    raise FaultSpecError(f"fault target {fault.target!r} is no function")
                fault.target = logical_id
            self._faults.append(fault)
        self.fired: list[tuple[str, str]] = []

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
        kind = self._take(logical_id, ("throttle", "timeout", "transient", "permanent"))
        if kind is None:
            return None
        return {
            "throttle": _payload("Lambda.TooManyRequestsException", "Rate exceeded (injected)"),
            "timeout": _payload("Sandbox.Timedout", "Task timed out (injected)"),
            "transient": _payload("TransientError", "injected transient fault"),
            "permanent": _payload("InjectedFaultError", "injected permanent fault"),
        }[kind]

    def kill_armed(self, logical_id: str) -> bool:
        """Whether this invocation's ffmpeg is to be killed (takes one ``kill``)."""
        return self._take(logical_id, ("kill",)) is not None

    def s3_put_fails(self) -> bool:
        """Whether S3 answers this PutObject from a function with 503 SlowDown."""
        return self._take("s3put", S3_KINDS["s3put"]) is not None

    def s3_get_cut(self) -> bool:
        """Whether S3 drops this ranged GetObject by an ffmpeg halfway through its body."""
        return self._take("s3get", S3_KINDS["s3get"]) is not None


def _payload(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}
