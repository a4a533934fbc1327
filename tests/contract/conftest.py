"""What the contract tests share: one `sam build` of the template, as it would deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflow.local.build import find_interpreter
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` of the real template for the template's own runtime (the deploy build)."""
    out = tmp_path_factory.mktemp("sam-build")
    runtime = Stack(ROOT).runtime()
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PYTHON_VERSION": runtime.removeprefix("python"),
        # What `python3.12` names on a deploy machine; pyenv's shim here may not run it.
        "RUNTIME_PYTHON": str(find_interpreter(runtime).path),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--template", "sam-template.yaml",
         "--build-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out
