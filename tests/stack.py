"""`vidflow up` in its own process, and clients that reach it as any user's would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

VIDFLOW = [sys.executable, "-m", "workflow.cli.main"]


def free_port(next_free: bool = False) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now; with ``next_free``, one
    whose successor is free too (`vidflow up` serves its playback origin there)."""
    while True:
        with socket.socket() as s, socket.socket() as after:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if not next_free:
                return port
            try:
                after.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


@dataclass
class RunningStack:
    ready: dict[str, str]
    process: subprocess.Popen[str]

    def client(self, service: str) -> Any:
        """A boto3 client with throwaway credentials, pointed at the stack."""
        return boto3.client(
            service,
            endpoint_url=self.ready["endpoint_url"],
            region_name=self.ready["region"],
            aws_access_key_id="anything",
            aws_secret_access_key="anything",
        )


@contextmanager
def vidflow_up(*options: str, root: Path | None = None) -> Iterator[RunningStack]:
    """Start `vidflow up` with ``options`` (for the project at ``root``, this one by
    default), wait for its JSON line, stop it with SIGTERM. One that does not start fails
    with what it printed; one that does not stop is killed, and the test's own failure,
    if it has one, is the one reported."""
    env = {**os.environ, "VIDFLOW_ROOT": str(root)} if root else None
    with tempfile.TemporaryFile("w+") as said:
        process = subprocess.Popen(
            [*VIDFLOW, "up", "--port", str(free_port(next_free=True)), *options],
            stdout=subprocess.PIPE,
            stderr=said,
            text=True,
            env=env,
        )
        ready: dict[str, Any] = {}
        failed = True
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            try:
                ready = json.loads(line)
            except json.JSONDecodeError:
                said.seek(0)
                raise AssertionError(
                    f"vidflow up did not start: {line!r}\n{said.read()[-4000:]}"
                ) from None
            yield RunningStack(ready, process)
            failed = False
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                if not failed:
                    raise
            # The function log outlives `vidflow up` for its user; a test's goes with it.
            if "function_log" in ready:
                Path(ready["function_log"]).unlink(missing_ok=True)
