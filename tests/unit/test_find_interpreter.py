"""The template's Python is found without asking pyenv's shims."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow.local.build import find_interpreter


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def pyenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # GIVEN pyenv with a 3.12 among its versions and its shim first on PATH; the shim
    # writes down that it was run
    root = tmp_path / "pyenv"
    _script(root / "shims" / "python3.12", f"touch {tmp_path / 'shim-ran'}; echo 3.12")
    _script(root / "versions" / "3.12.9" / "bin" / "python3.12", "echo 3.12")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'shims'}:/usr/bin:/bin")
    find_interpreter.cache_clear()
    yield tmp_path
    find_interpreter.cache_clear()


def test_the_version_behind_a_pyenv_shim_is_used_without_running_the_shim(pyenv: Path) -> None:
    # WHEN the functions' interpreter is looked for
    found = find_interpreter("python3.12")
    # THEN it is the version's own binary (workers start it without bash in front), and
    # the shim was never asked
    assert found.path == pyenv / "pyenv" / "versions" / "3.12.9" / "bin" / "python3.12"
    assert found.version == "3.12"
    assert not (pyenv / "shim-ran").exists()
