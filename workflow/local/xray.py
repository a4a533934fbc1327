"""The X-Ray daemon of the local stack: a UDP socket on 127.0.0.1 that keeps every segment
document the functions' X-Ray SDK sends, as the daemon beside each Lambda would forward
them to X-Ray. Each invocation gets a trace header (``_X_AMZN_TRACE_ID``) from the runtime,
as on Lambda, so Powertools' ``Tracer`` runs in the functions exactly as deployed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

# The SDK prefixes each document with this header line.
_HEADER = b'{"format": "json", "version": 1}'


def trace_header() -> str:
    """A new, sampled trace header, as Lambda gives an invocation."""
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled=1"


class TraceDaemon:
    """Collects the segment documents sent to ``address`` until stopped."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._documents: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def documents(self) -> list[dict[str, Any]]:
        """Every (sub)segment received so far, in arrival order."""
        with self._lock:
            return list(self._documents)

    def _receive(self) -> None:
        while True:
            try:
                data = self._socket.recv(65536)
            except OSError:
                return
            header, _, body = data.partition(b"\n")
            if header.replace(b" ", b"") != _HEADER.replace(b" ", b""):
                continue
            try:
                document = json.loads(body)
            except ValueError:
                continue
            with self._lock:
                self._documents.append(document)

    def stop(self) -> None:
        self._socket.close()
