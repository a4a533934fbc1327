"""The local Lambda runtime enforces what Lambda enforces, and runs only the built artefacts.

A copy of the project with planted faults (a handler that imports what its artefacts lack,
one that sleeps past its ``Timeout``, one that allocates past its ``MemorySize``) is built
and served by ``vidflow up`` in its own process: each job ends with the error name AWS
would give, in the failure record. The session's engine is then looked at from outside,
through ``/proc``: its workers run the template's Python on the built folders, and nothing
of the development environment is on their path, in their environment or mapped in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import ROOT, upload_and_follow
from tests.stack import RunningStack, vidflow_up

PROJECT = ("sam-template.yaml", "statemachine", "lambdas", "layers", "workflow")
# Where the development environment lives: nothing a worker loads may come from here.
DEV_PREFIXES = tuple({sys.prefix, str(Path(sys.executable).resolve().parents[1])})

PLANTED_PROBE = """
def handler(event, context):
    import time

    key = event["source"]["key"]
    if "sleep" in key:
        time.sleep(60)
    if "hog" in key:
        hog = b"x" * (600 << 20)
        time.sleep(10)
        return len(hog)
    return real_handler(event, context)
"""


def _planted_copy(target: Path) -> Path:
    """The project with a Probe that misbehaves on request and a Plan that cannot import."""
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source,
                target / name,
                ignore=shutil.ignore_patterns("__pycache__", "node_modules", "local", "cli"),
            )
        else:
            shutil.copy2(source, target / name)
    probe = target / "lambdas" / "probe" / "app.py"
    text = probe.read_text().replace("def handler(", "def real_handler(")
    probe.write_text(text.replace("@logger.inject_lambda_context\n", "") + PLANTED_PROBE)
    plan = target / "lambdas" / "plan" / "app.py"
    # PyYAML is in the development environment, never in the Plan function's artefacts.
    plan.write_text("import yaml  # planted\n" + plan.read_text())
    template = target / "sam-template.yaml"
    text = template.read_text()
    probe_block = text.index("  ProbeFunction:")
    head, tail = text[:probe_block], text[probe_block:]
    tail = tail.replace("Timeout: 300", "Timeout: 3", 1).replace(
        "MemorySize: 2048", "MemorySize: 256", 1
    )
    template.write_text(head + tail)
    return target


class _Planted:
    """A running `vidflow up` of the planted copy, with what `upload_and_follow` uses."""

    def __init__(self, stack: RunningStack) -> None:
        self.client = stack.client
        self.endpoints = SimpleNamespace(**stack.ready)
        self.log_file = Path(stack.ready["function_log"])


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Planted]:
    root = _planted_copy(tmp_path_factory.mktemp("planted"))
    with vidflow_up(root=root) as stack:
        yield _Planted(stack)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("uploads/plain.mp4", "Runtime.ImportModuleError"),
        ("uploads/sleep.mp4", "Sandbox.Timedout"),
        ("uploads/hog.mp4", "Runtime.OutOfMemory"),
    ],
)
def test_what_lambda_enforces_ends_the_job_by_name(
    planted: _Planted, clip: Any, tmp_path: Path, key: str, expected: str
) -> None:
    # GIVEN a built project whose Probe sleeps or allocates on request and whose Plan
    # imports a module its artefacts lack
    # WHEN a video is uploaded under a key that triggers one of them
    run = upload_and_follow(planted, clip("h264_aac_2gop"), key, tmp_path)
    # THEN the job fails with the name AWS gives, recorded, and nothing is published
    assert run.status == "FAILED"
    assert run.error == expected, run.cause
    assert run.failure is not None and run.failure["error"] == expected
    assert run.output_keys == []
    if expected == "Runtime.ImportModuleError":
        assert "No module named 'yaml'" in run.failure["cause"]


def test_a_cold_start_and_the_logs_are_lambdas(planted: _Planted) -> None:
    # GIVEN the jobs above ran
    log = planted.log_file.read_text()
    # THEN the function log holds Lambda's START / END / REPORT lines with request ids
    reports = [line for line in log.splitlines() if "REPORT RequestId:" in line]
    assert reports and all("Memory Size:" in line for line in reports)
    assert any("Init Duration:" in line for line in reports)
    assert "[PlanFunction]" in log and "No module named 'yaml'" in log


def _workers(engine: Any) -> list[Any]:
    assert engine.lambdas is not None
    return [w for w in engine.lambdas.workers() if w.alive()]


@dataclass(frozen=True)
class _Process:
    """What ``/proc`` says of a worker's process."""

    cmdline: list[bytes]
    cwd: Path
    environ: dict[str, str]
    maps: set[str]


def _process(worker: Any) -> _Process | None:
    """What ``/proc`` says of ``worker``'s process, or None if it ended while read: the
    runtime reclaims a worker idle 5 minutes at any moment, as Lambda does (a session's
    engine has some near that age), and a killed one reads as gone or empty."""
    pid = worker.process.pid
    try:
        read = _Process(
            cmdline=Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"),
            cwd=Path(os.readlink(f"/proc/{pid}/cwd")),
            environ=dict(
                entry.split("=", 1)
                for entry in Path(f"/proc/{pid}/environ").read_text().split("\0")
                if "=" in entry
            ),
            maps={
                line.split(maxsplit=5)[-1]
                for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                if "/" in line
            },
        )
    except OSError:
        if worker.alive():
            raise
        return None
    return read if worker.alive() else None


def test_the_sessions_workers_run_only_the_built_artefacts(
    engine: Any, run_job: Any, clip: Any
) -> None:
    # GIVEN the session's engine has run a whole job (every VOD function has a worker)
    assert run_job(clip("h264_aac_2gop"), key="uploads/isolation.mp4").status == "SUCCEEDED"
    workers = _workers(engine)
    # (the stack's own copy of the build, so that a rebuild beside it changes nothing)
    build = engine.lambdas.build_dir
    assert build.is_relative_to(ROOT / ".aws-sam" / "engines") and build.name == "build"
    # (a worker reclaimed while read runs nothing any more: the job's own, just used, stay)
    seen = {w.process.pid: p for w in workers if (p := _process(w)) is not None}
    assert len(seen) >= 5
    for pid, process in seen.items():
        # THEN each runs the template's Python, isolated, on its build folder
        assert process.cmdline[1:4] == [b"-I", b"-S", b"-u"], process.cmdline
        assert process.cwd.is_relative_to(build)
        assert process.environ["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{engine.stack.runtime()}"
        # AND nothing of the development environment is on its path or mapped in memory
        assert not any(prefix in process.environ["PATH"] for prefix in DEV_PREFIXES)
        assert not [m for m in process.maps if m.startswith(DEV_PREFIXES)], pid
        assert "site-packages" not in " ".join(process.maps)


def test_a_workers_modules_come_from_its_artefacts_alone(engine: Any) -> None:
    # GIVEN a warm worker of a function with the PyAV layer (the Probe)
    # WHEN it is asked, through its own runtime, for its import path and loaded modules
    result = engine.lambdas.introspect("ProbeFunction")
    # THEN every path and every module file is the build, the runtime folder or the stdlib
    allowed = (str(ROOT / ".aws-sam"), result["stdlib"])
    assert all(path.startswith(allowed) for path in result["path"]), result["path"]
    assert result["modules"], "no module files reported"
    outside = {
        name: file for name, file in result["modules"].items() if not file.startswith(allowed)
    }
    assert outside == {}
    assert any("PyAVLayer" in file for file in result["modules"].values())
    assert sys.prefix not in json.dumps(result) and "site-packages" not in json.dumps(result)


def test_a_worker_ended_twice_closes_only_its_own_files(engine: Any) -> None:
    from workflow.local.engine import built_runtime

    # GIVEN a runtime of its own, with one warm worker that has been ended
    lambdas = built_runtime(engine.stack, {})
    try:
        lambdas.introspect("ProbeFunction")
        (worker,) = lambdas.workers()
        pipes = {worker._to_worker, worker._from_worker}
        worker.kill()
        # WHEN new files take the numbers its pipes had, and it is ended again (as stop()
        # and a retiring thread both may)
        read, write = os.pipe()
        assert {read, write} & pipes, "the test needs the pipes' numbers reused"
        worker.kill()
        # THEN the new files are still open
        os.write(write, b"x")
        assert os.read(read, 1) == b"x"
        os.close(read)
        os.close(write)
    finally:
        lambdas.stop()


def test_a_warm_worker_that_died_is_replaced_unseen(engine: Any) -> None:
    from workflow.local.engine import built_runtime

    # GIVEN a runtime of its own whose one warm worker was killed from outside while idle
    lambdas = built_runtime(engine.stack, {})
    try:
        lambdas.introspect("ProbeFunction")
        (dead,) = lambdas.workers()
        os.killpg(dead.process.pid, signal.SIGKILL)
        dead.process.wait()
        # WHEN the function is asked again
        result = lambdas.introspect("ProbeFunction")
        # THEN a new environment answers (a cold start), as on Lambda, and the dead one is gone
        assert result["modules"]
        assert lambdas.cold_starts == 2
        assert dead not in lambdas.workers() and len(lambdas.workers()) == 1
    finally:
        lambdas.stop()


def test_functions_started_ahead_are_warm_at_their_first_call(engine: Any) -> None:
    from workflow.local.engine import built_runtime

    # GIVEN a runtime of its own that starts two functions' environments ahead of any call
    lambdas = built_runtime(engine.stack, {})
    try:
        lambdas.prewarm(["ProbeFunction", "PlanFunction"]).join(timeout=60)
        assert lambdas.cold_starts == 2
        # WHEN each is then called
        for name in ("ProbeFunction", "PlanFunction"):
            assert lambdas.introspect(name)["modules"]
        # THEN each call found its environment warm: no cold start more
        assert lambdas.cold_starts == 2 and len(lambdas.workers()) == 2
    finally:
        lambdas.stop()
