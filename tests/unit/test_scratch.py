"""Scratch folders across a function killed mid-invocation: Lambda starts the runtime
again in the same execution environment, its /tmp as the killed one left it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# An invocation that writes into its scratch folder and is killed there (its timeout).
KILLED = """
import os, signal
from workflow.runtime import scratch_dir
with scratch_dir() as path:
    (path / "seg_00000.ts").write_bytes(bytes(1000))
    os.kill(os.getpid(), signal.SIGKILL)
"""
# The next invocation in the same environment: a new runtime process, same /tmp.
NEXT = """
from workflow.runtime import scratch_dir
with scratch_dir() as path:
    print(path.name)
"""


def run(code: str, tmp: Path, lambda_env: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    env.pop("LAMBDA_TASK_ROOT", None)
    if lambda_env:
        env["LAMBDA_TASK_ROOT"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("lambda_env", [True, False])
def test_a_killed_invocations_scratch_is_removed_by_the_next_one_in_its_environment(
    tmp_path: Path, lambda_env: bool
) -> None:
    # GIVEN an invocation killed while its scratch folder held its partial output
    killed = run(KILLED, tmp_path, lambda_env)
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith("vidflow-")
    # WHEN the runtime starts again in the same environment and the retry makes its own
    following = run(NEXT, tmp_path, lambda_env)
    assert following.returncode == 0, following.stderr
    # THEN in Lambda the dead invocation's folder is gone; anywhere else (a temporary
    # folder others share) nothing but its own is touched
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == ([] if lambda_env else left)
