"""The layers' Makefiles on a machine of another shape (a stand-in pip, no network)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PIP = """#!/bin/sh
mkdir -p "$ARTIFACTS_DIR/python/av" && echo module > "$ARTIFACTS_DIR/python/av/_core.so"
"""


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH that finds every program this one does but ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in reversed(os.environ["PATH"].split(os.pathsep)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            link = bin_dir / name
            if name not in missing:
                link.unlink(missing_ok=True)
                link.symlink_to(Path(folder) / name)
    return str(bin_dir)


def test_the_pyav_layer_builds_where_binutils_are_not_installed(tmp_path: Path) -> None:
    # GIVEN a machine without `strip` (a slim Debian or Python image has no binutils)
    pip = tmp_path / "pip"
    pip.write_text(FAKE_PIP)
    pip.chmod(pip.stat().st_mode | stat.S_IEXEC)
    artefacts = tmp_path / "artefacts"
    env = {**os.environ, "PATH": _path_without(tmp_path, "strip"), "ARTIFACTS_DIR": str(artefacts)}
    # WHEN sam build runs the layer's Makefile
    done = subprocess.run(
        ["make", "--makefile", str(ROOT / "layers" / "pyav" / "Makefile"), "build-PyAVLayer",
         f"PIP={pip}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # THEN the layer is built, its modules only not stripped
    assert done.returncode == 0, done.stdout + done.stderr
    assert (artefacts / "python" / "av" / "_core.so").read_text() == "module\n"
    assert "no strip to run" in done.stdout
