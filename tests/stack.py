"""`vidflow up` in its own process, and clients that reach it as any user's would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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
    default), wait for its JSON line, stop it with SIGTERM."""
    env = {**os.environ, "VIDFLOW_ROOT": str(root)} if root else None
    process = subprocess.Popen(
        [*VIDFLOW, "up", "--port", str(free_port(next_free=True)), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    ready: dict[str, Any] = {}
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        yield RunningStack(ready, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        # The function log outlives `vidflow up` for its user; a test's goes with it.
        if "function_log" in ready:
            Path(ready["function_log"]).unlink(missing_ok=True)
