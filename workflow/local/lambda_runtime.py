"""The template's functions, run from their ``sam build`` artefacts the way Lambda runs them.

Each function runs in worker processes of its own (execution environments): the
template's Python started isolated (``-I -S``), its import path only the function's build
folder, its layers' ``python/`` folders in the template's order and a runtime folder with
boto3; its layers' ``bin/`` where ``/opt/bin`` would be; the template's ``Environment``
plus the variables Lambda sets; a private ``/tmp`` of ``EphemeralStorage``. A worker
imports the handler once (a cold start) and then serves one invocation at a time, warm;
concurrent invocations start more workers, up to a cap per function.

What Lambda enforces is enforced: ``Timeout`` (the worker is killed: ``Sandbox.Timedout``),
``MemorySize`` over the worker and its children (``Runtime.OutOfMemory``), an import
failure at init (``Runtime.ImportModuleError``), a full ``/tmp``. Every line a worker
prints goes to the function log with Lambda's START / END / REPORT lines around it.

Over 400 lines because a worker, its pool and the limits it is held to are one mechanism
(the bootstrap it talks to is ``workflow.local.bootstrap``); split, each part would need
the others' private state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from workflow.local.build import Interpreter, release
from workflow.local.faults import FaultPlan
from workflow.local.template import Function, Stack
from workflow.local.xray import trace_header

log = logging.getLogger("vidflow.lambda")

# Lambda's synchronous payload limit, each way.
PAYLOAD_LIMIT = 6 * 1024 * 1024
# How often a running invocation's memory, /tmp and faults are looked at.
_TICK = 0.1
# How often the processes counted in its memory are found again. Finding them reads every
# thread's children under /proc (an ffmpeg has dozens of threads): at every tick this was
# 7 CPU-s of a 60 s 1080p `vidflow process` run; a function's own process is always counted.
_TREE_SECONDS = 0.5
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Lambda's init phase may take this long; past it, Lambda runs the init again in the first
# invocation, under the function's timeout (a "suppressed init").
INIT_SECONDS = 10.0
_LAMBDA_PATH = "/usr/local/bin:/usr/bin:/bin"
# Lambda's /tmp is a plain path, and the functions name files under it in ffmpeg filter
# arguments, which take only a path that needs no quoting (workflow.media.quality refuses
# any other). A function's /tmp is made in the machine's temporary folder while that is
# one too; under /tmp where it is not (a TMPDIR with a space or an accent in it).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")

# A warm worker idle this long is stopped, as Lambda reclaims idle execution environments.
IDLE_SECONDS = 300.0


def function_tmp_parent() -> str:
    """Where the execution environments' /tmp folders are made."""
    here = tempfile.gettempdir()
    return here if _PLAIN_PATH.fullmatch(here) else "/tmp"


@dataclass(frozen=True)
class Invocation:
    """How long one invocation took: in all, in the handler, and in init if it was cold."""

    function: str
    total_ms: float
    handler_ms: float | None
    init_ms: float


@dataclass(frozen=True)
class Artefacts:
    """One function as ``sam build`` laid it out: its code and its layers' folders."""

    function: Function
    code: Path
    layers: tuple[Path, ...]

    @property
    def python_paths(self) -> list[Path]:
        return [self.code, *(p / "python" for p in self.layers if (p / "python").is_dir())]

    @property
    def bin_dirs(self) -> list[Path]:
        return [p / "bin" for p in self.layers if (p / "bin").is_dir()]

    @property
    def lib_dirs(self) -> list[Path]:
        return [p / "lib" for p in self.layers if (p / "lib").is_dir()]


def artefacts_of(function: Function, build_dir: Path) -> Artefacts:
    return Artefacts(
        function,
        build_dir / function.logical_id,
        tuple(build_dir / layer for layer in function.layers),
    )


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _timed_out_error(function: Function, request_id: str) -> dict[str, Any]:
    """What Lambda answers a call that ran past the function's ``Timeout``."""
    message = f"Task timed out after {function.timeout:.2f} seconds"
    return _error("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")


def _stopping_error() -> dict[str, Any]:
    """What an invocation the runtime's stop cut short ends with."""
    return _error("Runtime.ExitError", "the runtime is stopping")


# One line sent to CloudWatch Logs: the function's name, when (ms), the line.
LogLine = tuple[str, int, str]


def _append_privately(path: Path) -> TextIO:
    """``path`` opened to append, made readable by this user only, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    return os.fdopen(os.open(path, flags, 0o600), "a", buffering=1)


class FunctionLog:
    """The functions' log: one file (or stderr), a line per line a worker printed; and,
    once ``ship`` is called, the same lines in the template's log group, as Lambda sends
    them, a batch every ``SHIP_SECONDS``."""

    SHIP_SECONDS = 0.5

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._stream: TextIO = _append_privately(path) if path else sys.stderr
        self._owned = path is not None
        self._pending: list[LogLine] = []
        self._shipping = threading.Event()

    def write(self, function: Function, line: str) -> None:
        with self._lock:
            if not self._stream.closed:
                self._stream.write(f"[{function.logical_id}] {line.rstrip()}\n")
            if self._shipping.is_set():
                self._pending.append((function.name, int(time.time() * 1000), line.rstrip()))

    def ship(self, send: Callable[[list[LogLine]], None]) -> None:
        """From now on, hand every line to ``send`` too, in batches, on a thread of its own."""
        self._shipping.set()

        def run() -> None:
            while self._shipping.is_set():
                time.sleep(self.SHIP_SECONDS)
                with self._lock:
                    batch, self._pending = self._pending, []
                if not batch or not self._shipping.is_set():
                    continue
                try:
                    send(batch)
                except Exception as exc:  # the file keeps every line; the group may not
                    log.warning("function log lines not put in the log group: %s", exc)

        threading.Thread(target=run, name="function-log-shipper", daemon=True).start()

    def close(self) -> None:
        self._shipping.clear()
        if self._owned:
            self._stream.close()


class Worker:
    """One execution environment: a process that imported the handler and waits for events."""

    def __init__(
        self, artefacts: Artefacts, interpreter: Interpreter, runtime: Path, env: dict[str, str]
    ) -> None:
        self.artefacts = artefacts
        function = artefacts.function
        # Named here, made by the worker as it starts (bootstrap.serve): one made here would
        # be left for good by an engine killed before its worker began, which removes its own.
        self.tmp = Path(function_tmp_parent()) / f"vidflow-{function.logical_id}-{uuid.uuid4().hex}"
        self.peak_mb = 0.0
        self.idle_since = time.monotonic()
        to_worker_r, self._to_worker = os.pipe()
        self._from_worker, from_worker_w = os.pipe()
        paths = [str(p) for p in (*artefacts.python_paths, runtime)]
        worker_env = {
            **env,
            "TMPDIR": str(self.tmp),
            "_VIDFLOW_RUNTIME_FDS": f"{to_worker_r},{from_worker_w}",
            "_VIDFLOW_RUNTIME_PATH": json.dumps(paths),
        }
        try:
            self.process = subprocess.Popen(
                [str(interpreter.path), "-I", "-S", "-u", str(runtime / "vidflow_bootstrap.py")],
                cwd=artefacts.code,
                env=worker_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(to_worker_r, from_worker_w),
                start_new_session=True,
            )
        except BaseException:
            # No process (out of file numbers or processes): leave nothing open behind.
            # (No /tmp either: only a worker that started makes it, and removes it itself
            # once the pipe closed here hangs up.)
            for fd in (self._to_worker, self._from_worker):
                os.close(fd)
            raise
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self._buffer = b""
        self._counted: list[int] = []
        self._counted_at = -math.inf
        self._kill_lock = threading.Lock()
        self._killed = False

    def follow_output(self, write: Callable[[str], None]) -> None:
        """Copy the worker's stdout and stderr, line by line, until it exits."""
        for raw in self.process.stdout or ():
            write(raw.decode("utf-8", "replace"))

    def init(self, seconds: float | None = None) -> tuple[float, dict[str, Any] | None]:
        """Wait up to ``seconds`` (Lambda's init limit unless given) for the handler's
        import: (milliseconds, None) or the init error."""
        seconds = INIT_SECONDS if seconds is None else seconds
        message = self._receive(time.monotonic() + seconds, None)
        if "tick" in message:
            self.kill()
            return seconds * 1000, _error("Runtime.InitTimeout", "init phase timed out")
        if "exited" in message:
            return 0.0, _error("Runtime.ExitError", "Runtime exited during init")
        return float(message.get("init_ms", 0.0)), message.get("error")

    def invoke(
        self,
        event_json: str,
        request_id: str,
        on_tick: Callable[[Worker], str | None],
        spent: float = 0.0,
    ) -> dict[str, Any]:
        """Run one event, ``spent`` seconds of the function's timeout already gone (an init
        run again in the invocation); returns the worker's answer or the error that ended it."""
        left = self.artefacts.function.timeout - spent
        deadline = time.monotonic() + left
        request = {
            "event": json.loads(event_json),
            "request_id": request_id,
            "deadline_ms": int((time.time() + left) * 1000),
            "trace_id": trace_header(),
        }
        return self.ask(request, deadline, on_tick)

    def ask(
        self,
        request: dict[str, Any],
        deadline: float | None = None,
        on_tick: Callable[[Worker], str | None] | None = None,
    ) -> dict[str, Any]:
        """Send the bootstrap one request line and wait for its answer line."""
        try:
            os.write(self._to_worker, json.dumps(request).encode() + b"\n")
        except BrokenPipeError:
            # It ended between being taken and being asked: Lambda's runtime exit.
            self.process.wait()
            return {"exited": self.process.returncode}
        return self._receive(deadline or time.monotonic() + INIT_SECONDS, on_tick)

    def _receive(
        self, deadline: float, on_tick: Callable[[Worker], str | None] | None
    ) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._from_worker], [], [], _TICK)
            if ready:
                chunk = os.read(self._from_worker, 1 << 20)
                if not chunk:
                    self.process.wait()
                    return {"exited": self.process.returncode}
                self._buffer += chunk
                continue
            if time.monotonic() > deadline:
                return {"tick": "deadline"}
            if on_tick is not None:
                verdict = on_tick(self)
                if verdict is not None:
                    return {"killed": verdict}
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def tree(self) -> list[int]:
        """The worker's pid and every descendant's (ffmpeg included)."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in _listdir(f"/proc/{pid}/task"):
                try:
                    children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                except OSError:
                    continue
                queue += [int(child) for child in children]
        return found

    def memory_mb(self) -> float:
        """Resident memory of the worker and its children, in MB (what Lambda counts);
        the children as found at most ``_TREE_SECONDS`` ago."""
        now = time.monotonic()
        if now - self._counted_at >= _TREE_SECONDS:
            self._counted, self._counted_at = self.tree(), now
        pages = 0
        for pid in self._counted:
            try:
                pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
        used = pages * _PAGE_BYTES / (1024 * 1024)
        self.peak_mb = max(self.peak_mb, used)
        return used

    def tmp_mb(self) -> float:
        total = 0
        for dirpath, _, filenames in os.walk(self.tmp):
            for name in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
        return total / (1024 * 1024)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the environment: the worker and everything it started. Once only: stop()
        and a retiring thread may both get here, and a pipe closed twice would close
        whatever file another thread has opened under the same number since."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            for fd in (self._to_worker, self._from_worker):
                with contextlib.suppress(OSError):
                    os.close(fd)
            shutil.rmtree(self.tmp, ignore_errors=True)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


class _Pool:
    """The warm workers of one function, and how many exist."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle: list[Worker] = []
        self.count = 0
        # Workers started ahead of any call and still in their init, and the callers
        # waiting for one of them.
        self.warming = 0
        self.waiting = 0
        self.cond = threading.Condition()

    def take(self) -> Worker | None:
        """A warm worker, or None when the caller may start one. It waits at the cap,
        and for a worker started ahead that no other caller waits for: that one is
        ready sooner than a new one would be."""
        with self.cond:
            while not self.idle:
                if self.warming > self.waiting:
                    self.waiting += 1
                    self.cond.wait()
                    self.waiting -= 1
                elif self.count < self.cap:
                    self.count += 1
                    return None
                else:
                    self.cond.wait()
            return self.idle.pop()

    def reserve_warming(self) -> bool:
        """A place for a worker started ahead of any call; False at the cap."""
        with self.cond:
            if self.count >= self.cap:
                return False
            self.count += 1
            self.warming += 1
            return True

    def give_back(self, worker: Worker | None, *, warmed: bool = False) -> None:
        """Return a worker for reuse, or None for one that is gone."""
        with self.cond:
            if warmed:
                self.warming -= 1
            if worker is None:
                self.count -= 1
            else:
                worker.idle_since = time.monotonic()
                self.idle.append(worker)
            if warmed:
                # Its waiter, and any caller that may now start one of its own.
                self.cond.notify_all()
            else:
                self.cond.notify()

    def expired(self, idle_seconds: float) -> list[Worker]:
        """Take out the workers idle longer than ``idle_seconds`` (Lambda reclaims them)."""
        cutoff = time.monotonic() - idle_seconds
        with self.cond:
            old = [w for w in self.idle if w.idle_since < cutoff]
            self.idle = [w for w in self.idle if w.idle_since >= cutoff]
            self.count -= len(old)
            self.cond.notify_all()
        return old


class LambdaRuntime:
    """Invoke the functions ``sam-template.yaml`` names, each from its built artefacts."""

    def __init__(
        self,
        stack: Stack,
        build_dir: Path,
        runtime_dir: Path,
        interpreter: Interpreter,
        aws_env: dict[str, str],
        *,
        log_file: Path | None = None,
        faults: FaultPlan | None = None,
        max_workers: int = 8,
    ) -> None:
        self.stack = stack
        self.build_dir = build_dir
        self.runtime_dir = runtime_dir
        self.interpreter = interpreter
        self.aws_env = aws_env
        self.functions = {f.logical_id: f for f in stack.functions()}
        self.log = FunctionLog(log_file)
        self.faults = faults or FaultPlan([], self.logical_id)
        self._pools = {lid: _Pool(max_workers) for lid in self.functions}
        # Invocations running now, per function: what its reserved concurrency caps.
        self._running = dict.fromkeys(self.functions, 0)
        self._workers: set[Worker] = set()
        self._lock = threading.Lock()
        self.cold_starts = 0
        # Functions whose environment started ahead outran Lambda's init limit: their next
        # cold start runs the init in the call.
        self._init_timed_out: dict[str, bool] = {}
        # The latest invocations' timings, for the engine overhead benchmark.
        self.timings: deque[Invocation] = deque(maxlen=1000)
        self._stopping = threading.Event()
        # How many invocations have ended, and a condition that changes with it.
        self.calls_ended = 0
        self._call_ended = threading.Condition()
        threading.Thread(target=self._reclaim_idle, name="lambda-reaper", daemon=True).start()

    def logical_id(self, name: str) -> str | None:
        function = self.stack.find_function(name)
        return function.logical_id if function else None

    def invoke(
        self, function_name: str, event: Any, request_id: str | None = None
    ) -> tuple[Any, dict[str, Any] | None]:
        """Run one event; returns (result, None) or (None, the Lambda error payload).

        It never raises: a failure of the local service itself (a worker that cannot be
        started, a pipe that breaks) is answered as Lambda answers its own, with
        ``Lambda.ServiceException``, which the state machines retry. Raised into the
        interpreter it would end a Map item as a silent null, or drop an S3 event."""
        found = self.stack.find_function(function_name)
        function = self.functions.get(found.logical_id) if found else None
        if function is None:
            return None, _error("ResourceNotFoundException", f"no function {function_name}")
        injected = self.faults.before_invoke(function.logical_id)
        if injected is not None:
            return None, injected
        event_json = json.dumps(event)
        if len(event_json) > PAYLOAD_LIMIT:
            return None, _error(
                "RequestEntityTooLargeException",
                f"Request must be smaller than {PAYLOAD_LIMIT} bytes for InvokeFunction",
            )
        if not self._admitted(function):
            # As Lambda answers a call over the function's reserved concurrency: at once,
            # not queued (the state machines' Retry on it is what waits).
            return None, _error(
                "Lambda.TooManyRequestsException",
                f"Rate Exceeded: {function.logical_id} runs at most "
                f"{function.reserved_concurrency} at once (ReservedConcurrentExecutions)",
            )
        request_id = request_id or str(uuid.uuid4())
        try:
            return self._run(function, event_json, request_id)
        except Exception as exc:
            if self._stopping.is_set():
                # Its workers were ended under it (Ctrl-C, `vidflow up` stopping): no news.
                return None, _stopping_error()
            message = f"RequestId: {request_id} the local Lambda service failed: {exc!r}"
            self.log.write(function, f"ERROR {message}\n{traceback.format_exc()}")
            log.error("%s: %s", function.logical_id, message)
            return None, _error("Lambda.ServiceException", message)
        finally:
            with self._lock:
                self._running[function.logical_id] -= 1
            with self._call_ended:
                self.calls_ended += 1
                self._call_ended.notify_all()

    def _admitted(self, function: Function) -> bool:
        """Count one more invocation running, unless the function's reserved concurrency
        is reached (then Lambda throttles it)."""
        with self._lock:
            running = self._running[function.logical_id]
            if (
                function.reserved_concurrency is not None
                and running >= function.reserved_concurrency
            ):
                return False
            self._running[function.logical_id] = running + 1
            return True

    def wait_for_a_call(self, seen: int, timeout: float) -> int:
        """Wait until more than ``seen`` invocations have ended, or ``timeout`` seconds;
        returns how many have. A count, not a signal: one that ends while the caller is
        busy elsewhere is not missed."""
        with self._call_ended:
            self._call_ended.wait_for(lambda: self.calls_ended > seen, timeout)
            return self.calls_ended

    def _run(
        self, function: Function, event_json: str, request_id: str
    ) -> tuple[Any, dict[str, Any] | None]:
        acquired = self._acquire(function, request_id)
        if isinstance(acquired, dict):
            return None, acquired
        worker, init_ms, spent = acquired
        healthy = False
        try:
            kill_ffmpeg = self.faults.kill_armed(function.logical_id)
            began = time.monotonic() - spent
            self.log.write(function, f"START RequestId: {request_id} Version: $LATEST")
            answer = worker.invoke(event_json, request_id, self._watch(kill_ffmpeg), spent)
            elapsed = (time.monotonic() - began) * 1000
            if worker.alive():
                worker.memory_mb()
            result, error = self._outcome(function, request_id, answer)
            self.log.write(function, f"END RequestId: {request_id}")
            self._log_report(function, request_id, elapsed, worker, init_ms)
            healthy = not {"tick", "killed", "exited"} & answer.keys()
        finally:
            # Always, or the pool would count a worker nobody can take until it deadlocks.
            self._release(worker, healthy=healthy)
        self.timings.append(
            Invocation(function.logical_id, elapsed, answer.get("handler_ms"), init_ms)
        )
        if error is not None:
            log.info(
                "%s failed: %s: %s", function.logical_id, error["errorType"], error["errorMessage"]
            )
        return result, error

    def _acquire(
        self, function: Function, request_id: str
    ) -> tuple[Worker, float, float] | dict[str, Any]:
        """A warm worker, or a new one (a cold start) with its init milliseconds and the
        seconds of the function's timeout its init took (when it was run again in the
        invocation), or the error its init ended with."""
        pool = self._pools[function.logical_id]
        worker = pool.take()
        while worker is not None and not worker.alive():
            # An environment that ended while warm is replaced, as Lambda does, unseen.
            self._release(worker, healthy=False)
            worker = pool.take()
        if worker is not None:
            return worker, 0.0, 0.0
        try:
            fresh, init_ms, spent, init_error = self._start_for_call(function)
        except BaseException:
            pool.give_back(None)
            raise
        if init_error is not None:
            if init_error["errorType"] == "Runtime.InitTimeout":
                # (only an init run again in the call ends so: the first one's limit is
                # Lambda's 10 s)
                init_error = _timed_out_error(function, request_id)
            self._log_report(function, request_id, spent * 1000, fresh, init_ms)
            self._release(fresh, healthy=False)
            return init_error
        return fresh, init_ms, spent

    def _start_for_call(
        self, function: Function
    ) -> tuple[Worker, float, float, dict[str, Any] | None]:
        """A cold start for a call: the worker, its init milliseconds, the seconds of the
        function's timeout its init took, and the error its init ended with. An init past
        Lambda's limit (this one, or an environment's started ahead) is run again in the
        call under the function's timeout, as Lambda does; the call's Duration then holds
        it, and no Init Duration is reported."""
        if not self._init_timed_out.pop(function.logical_id, False):
            worker, init_ms, error = self._cold_start(function)
            if error is None or not self._timed_out(function, worker, init_ms, error):
                return worker, init_ms, 0.0, error
        began = time.monotonic()
        worker, _, error = self._cold_start(function, function.timeout)
        spent = time.monotonic() - began
        if error is None and spent >= function.timeout:
            error = _error("Runtime.InitTimeout", "init phase timed out")
        return worker, 0.0, spent, error

    def _timed_out(
        self, function: Function, worker: Worker, init_ms: float, error: dict[str, Any]
    ) -> bool:
        """Whether an init ended past Lambda's limit (then logged, and its worker ended)."""
        if error["errorType"] != "Runtime.InitTimeout":
            return False
        self.log.write(
            function, f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: timeout"
        )
        self._retire(worker)
        return True

    def _release(self, worker: Worker, *, healthy: bool) -> None:
        pool = self._pools[worker.artefacts.function.logical_id]
        if healthy and worker.alive():
            pool.give_back(worker)
            return
        self._retire(worker)
        pool.give_back(None)

    def prewarm(self, logical_ids: list[str]) -> threading.Thread:
        """Start one execution environment per name, in order, in the background, as
        Lambda may initialize one ahead of the first call: an invocation that finds one
        still in its init waits for it. A failed init is logged as at a call and the
        call then makes its own cold start, which reports it."""
        unknown = [name for name in logical_ids if name not in self.functions]
        if unknown:
            raise ValueError(f"no function {', '.join(unknown)} in the template")

        def run() -> None:
            for logical_id in logical_ids:
                if self._stopping.is_set():
                    return
                function = self.functions[logical_id]
                pool = self._pools[logical_id]
                if not pool.reserve_warming():
                    continue
                worker: Worker | None = None
                try:
                    worker, init_ms, init_error = self._cold_start(function)
                    if init_error is not None and self._timed_out(
                        function, worker, init_ms, init_error
                    ):
                        self._init_timed_out[logical_id] = True
                        worker = None
                    elif init_error is not None or not worker.alive():
                        self._retire(worker)
                        worker = None
                except Exception as exc:
                    if not self._stopping.is_set():
                        log.warning("%s: starting ahead failed: %r", logical_id, exc)
                finally:
                    pool.give_back(worker, warmed=True)

        thread = threading.Thread(target=run, name="lambda-prewarm", daemon=True)
        thread.start()
        return thread

    def workers(self) -> list[Worker]:
        """Every execution environment now alive (busy or warm)."""
        with self._lock:
            return list(self._workers)

    def introspect(self, function_name: str) -> dict[str, Any]:
        """A worker's import path and loaded module files, asked of its bootstrap."""
        function = self.functions[function_name]
        acquired = self._acquire(function, str(uuid.uuid4()))
        if isinstance(acquired, dict):
            raise RuntimeError(f"{function_name} did not start: {acquired}")
        worker = acquired[0]
        try:
            answer = worker.ask({"introspect": True})
        finally:
            self._release(worker, healthy=True)
        found: dict[str, Any] = json.loads(answer["result"])
        return found

    def _cold_start(
        self, function: Function, init_seconds: float | None = None
    ) -> tuple[Worker, float, dict[str, Any] | None]:
        artefacts = artefacts_of(function, self.build_dir)
        worker = Worker(artefacts, self.interpreter, self.runtime_dir, self._environment(artefacts))
        with self._lock:
            # A worker started while stop() ran is one stop() did not see: end it here.
            stopping = self._stopping.is_set()
            if not stopping:
                self._workers.add(worker)
                self.cold_starts += 1
        if stopping:
            worker.kill()
            return worker, 0.0, _stopping_error()
        threading.Thread(
            target=worker.follow_output,
            args=(lambda line: self.log.write(function, line),),
            name=f"log-{function.logical_id}",
            daemon=True,
        ).start()
        init_ms, error = worker.init(init_seconds)
        return worker, init_ms, error

    def _environment(self, artefacts: Artefacts) -> dict[str, str]:
        """What a function's process sees: the template's variables and Lambda's own."""
        function = artefacts.function
        version = self.interpreter.version
        bins = [str(p) for p in artefacts.bin_dirs]
        env = {
            "PATH": os.pathsep.join([*bins, _LAMBDA_PATH]),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(artefacts.code),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.stack.region,
            "AWS_DEFAULT_REGION": self.stack.region,
            "_VIDFLOW_FUNCTION_ARN": function.arn,
            # The role its AWS calls are held to (bootstrap.hold_to_role), and the key
            # each KMS alias names (IAM holds a call through an alias to its key).
            "_VIDFLOW_POLICY": json.dumps(self.stack.role_statements(function.logical_id)),
            "_VIDFLOW_KMS_KEYS": json.dumps(self.stack.kms_keys()),
            **self.aws_env,
            **function.environment,
        }
        libs = [str(p) for p in artefacts.lib_dirs]
        if libs:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        # Where Lambda would find the Ffmpeg layer's binary (/opt/bin/ffmpeg).
        for folder in artefacts.bin_dirs:
            if (folder / "ffmpeg").is_file():
                env["FFMPEG_BINARY"] = str(folder / "ffmpeg")
                break
        return env

    def _watch(self, kill_ffmpeg: bool) -> Callable[[Worker], str | None]:
        """Called every tick of a running invocation: the limit it broke, if any."""
        ticks = 0

        def check(worker: Worker) -> str | None:
            nonlocal ticks, kill_ffmpeg
            ticks += 1
            function = worker.artefacts.function
            if worker.memory_mb() > function.memory:
                return "memory"
            if ticks % 5 == 0 and worker.tmp_mb() > function.ephemeral_storage:
                return "storage"
            if kill_ffmpeg:
                kill_ffmpeg = not self._kill_an_ffmpeg(worker)
            return None

        return check

    @staticmethod
    def _kill_an_ffmpeg(worker: Worker) -> bool:
        """The injected ``kill`` fault: SIGKILL the function's ffmpeg as soon as it runs."""
        for pid in worker.tree()[1:]:
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name == "ffmpeg":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    return True
        return False

    def _outcome(
        self, function: Function, request_id: str, answer: dict[str, Any]
    ) -> tuple[Any, dict[str, Any] | None]:
        if "result" in answer:
            body: str = answer["result"]
            if len(body) > PAYLOAD_LIMIT:
                return None, _error(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded the limit ({PAYLOAD_LIMIT} bytes).",
                )
            return json.loads(body), None
        if "error" in answer:
            error: dict[str, Any] = answer["error"]
            return None, error
        if answer.get("tick") == "deadline":
            return None, _timed_out_error(function, request_id)
        if answer.get("killed") == "memory":
            return None, _error(
                "Runtime.OutOfMemory",
                f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
                f"(over its {function.memory} MB)",
            )
        if answer.get("killed") == "storage":
            return None, _error(
                "OSError",
                f"[Errno 28] No space left on device (/tmp is {function.ephemeral_storage} MB)",
            )
        return None, _error(
            "Runtime.ExitError",
            f"RequestId: {request_id} Error: Runtime exited with error: "
            f"exit status {answer.get('exited')}",
        )

    def _log_report(
        self, function: Function, request_id: str, elapsed_ms: float, worker: Worker, init_ms: float
    ) -> None:
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\t"
            f"Memory Size: {function.memory} MB\tMax Memory Used: {worker.peak_mb:.0f} MB"
        )
        if init_ms:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        self.log.write(function, report)

    def _retire(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def _reclaim_idle(self) -> None:
        while not self._stopping.wait(IDLE_SECONDS / 10):
            for pool in self._pools.values():
                for worker in pool.expired(IDLE_SECONDS):
                    self._retire(worker)

    def stop(self) -> None:
        """End every execution environment."""
        self._stopping.set()
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.kill()
        self.log.close()
        release(self.build_dir)
