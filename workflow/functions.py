"""The template's functions, run in this process the way Lambda runs them.

A function's handler module is imported at its first invocation (a cold start) with
the function's template ``Environment`` applied, so settings parsed at import see what
they would see on Lambda. Invocations then run on the caller's thread; a raised
exception becomes a Lambda error payload whose ``errorType`` is the class name.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workflow.faults import FaultPlan, parse
from workflow.template import Function, Stack

log = logging.getLogger("vidflow.functions")

_env_lock = threading.Lock()
# Which function, if any, the current thread is running (for faults aimed at its calls).
_running = threading.local()


def running_function() -> str | None:
    """The logical id of the function this thread is running, or None."""
    return getattr(_running, "function", None)


class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    def __init__(self, function: Function, region: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionHost:
    """Load and invoke the handlers ``sam-template.yaml`` names."""

    def __init__(self, stack: Stack, log_file: Path | None = None, faults: str = "") -> None:
        self.stack = stack
        self.log_file = log_file
        self.functions = {f.logical_id: f for f in stack.functions()}
        self._by_name = {
            key: f
            for f in self.functions.values()
            for key in (f.name, f.arn, f.logical_id, f.logical_id.lower(), f.code_uri.name)
        }
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._load_lock = threading.Lock()
        self.faults = FaultPlan(parse(faults), self._logical_id)

    def _logical_id(self, name: str) -> str | None:
        function = self.find(name)
        return function.logical_id if function else None

    def find(self, name: str) -> Function | None:
        """A function by logical id, name, ARN (with or without qualifier) or code folder."""
        return (
            self._by_name.get(name)
            or self._by_name.get(name.split(":function:")[-1].split(":")[0])
            or self._by_name.get(name.lower())
        )

    def invoke(self, function_name: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Run a function's handler; returns (result, None) or (None, Lambda error payload)."""
        function = self.find(function_name)
        if function is None:
            error = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"no function {function_name}",
            }
            return None, error
        injected = self.faults.before_invoke(function.logical_id)
        if injected is not None:
            return None, injected
        try:
            handler = self._handler(function)
            fault = self.faults.during_invoke(function.logical_id)
            if fault is not None:
                fault()
            _running.function = function.logical_id
            try:
                result = handler(event, LambdaContext(function, self.stack.region))
            finally:
                _running.function = None
            return json.loads(json.dumps(result)), None
        except Exception as exc:
            log.info("%s failed: %s: %s", function.logical_id, type(exc).__name__, exc)
            return None, {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }

    def _handler(self, function: Function) -> Callable[..., Any]:
        with self._load_lock:
            if function.logical_id not in self._handlers:
                self._handlers[function.logical_id] = self._cold_start(function)
            return self._handlers[function.logical_id]

    def _cold_start(self, function: Function) -> Callable[..., Any]:
        """Import the handler module with the function's environment, as Lambda would."""
        module_name, attribute = function.handler.rsplit(".", 1)
        path = function.code_uri / f"{module_name.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"vidflow_fn_{function.logical_id}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        with _environment(function.environment):
            spec.loader.exec_module(module)
        self._route_function_logs(function)
        handler: Callable[..., Any] = getattr(module, attribute)
        return handler

    def _route_function_logs(self, function: Function) -> None:
        """Powertools logs to stdout; keep stdout for results: the log file, else stderr."""
        service = function.environment.get("POWERTOOLS_SERVICE_NAME", "vidflow")
        logger = logging.getLogger(service)
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.StreamHandler) or handler.stream is not sys.stdout:
                continue
            if self.log_file is None:
                handler.setStream(sys.stderr)
                continue
            logger.removeHandler(handler)
            file_handler = logging.FileHandler(self.log_file)
            file_handler.setFormatter(handler.formatter)
            logger.addHandler(file_handler)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with _env_lock:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
