"""The local engine runs `sam build` only when what it reads changed (a stand-in `sam`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workflow.local.build import BuildError, Interpreter, ensure_built, release

FAKE_SAM = """#!/bin/sh
echo "$PYTHON_VERSION $*" >> "{calls}"
mkdir -p "$5/Fn" && echo built > "$5/Fn/app.py"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    root = tmp_path / "project"
    for path, text in {
        "sam-template.yaml": "Resources: {}\n",
        "lambdas/fn/app.py": "def handler(event, context): return 1\n",
        "layers/workflow/Makefile": "build-WorkflowLayer:\n",
        "workflow/steps.py": "STEP = 1\n",
        "workflow/local/engine.py": "ENGINE = 1\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sam = bin_dir / "sam"
    sam.write_text(FAKE_SAM.format(calls=calls))
    sam.chmod(sam.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return root, calls


def _builds(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_a_build_is_reused_until_an_input_changes(project: tuple[Path, Path]) -> None:
    root, calls = project
    python = Interpreter(Path("/usr/bin/python3.12"), "3.12")
    # GIVEN a first build
    build = ensure_built(root, python)
    assert (build / "Fn" / "app.py").read_text() == "built\n"
    assert len(_builds(calls)) == 1 and _builds(calls)[0].startswith("3.12 build")
    # WHEN nothing changed, or only the local tools did, THEN no new build
    ensure_built(root, python)
    (root / "workflow" / "local" / "engine.py").write_text("ENGINE = 2\n")
    ensure_built(root, python)
    assert len(_builds(calls)) == 1
    # WHEN a handler, the runtime package or the target Python changes, THEN it rebuilds
    (root / "lambdas" / "fn" / "app.py").write_text("def handler(event, context): return 2\n")
    ensure_built(root, python)
    (root / "workflow" / "steps.py").write_text("STEP = 2\n")
    ensure_built(root, python)
    ensure_built(root, Interpreter(Path("/usr/bin/python3.11"), "3.11"))
    assert [line.split()[0] for line in _builds(calls)] == ["3.12", "3.12", "3.12", "3.11"]


def test_the_layers_get_their_wheels_with_a_pip_that_is_there(
    project: tuple[Path, Path],
) -> None:
    root, _ = project
    bin_dir = Path(os.environ["PATH"].split(os.pathsep)[0])
    # GIVEN a `python3` on PATH without pip, as Debian and Ubuntu install it, and a `sam`
    # that fetches wheels as the layers' Makefiles do (`PIP ?= python3 -m pip`)
    python3 = bin_dir / "python3"
    python3.write_text("#!/bin/sh\necho 'python3: No module named pip' >&2\nexit 1\n")
    python3.chmod(python3.stat().st_mode | stat.S_IEXEC)
    sam = bin_dir / "sam"
    sam.write_text(
        "#!/bin/sh\n${PIP:-python3 -m pip} --version >/dev/null || exit 1\n"
        + sam.read_text().partition("\n")[2]
    )
    # WHEN the functions are built
    build = ensure_built(root, Interpreter(Path("/usr/bin/python3.12"), "3.12"))
    # THEN they are
    assert (build / "Fn" / "app.py").read_text() == "built\n"


def test_a_failed_build_is_named_and_not_cached(project: tuple[Path, Path]) -> None:
    root, _ = project
    sam = Path(os.environ["PATH"].split(os.pathsep)[0]) / "sam"
    sam.write_text("#!/bin/sh\necho 'Build Failed: no python3.12' >&2\nexit 1\n")
    python = Interpreter(Path("/usr/bin/python3.12"), "3.12")
    with pytest.raises(BuildError, match=r"Build Failed: no python3\.12"):
        ensure_built(root, python)
    with pytest.raises(BuildError):
        ensure_built(root, python)


def test_a_running_stack_keeps_its_build_while_another_command_rebuilds(
    project: tuple[Path, Path],
) -> None:
    root, _ = project
    python = Interpreter(Path("/usr/bin/python3.12"), "3.12")
    # GIVEN a stack's private copy of the build, and one left by a process that was killed
    mine = ensure_built(root, python, private=True)
    orphan = mine.parent.parent / "999999999-x"
    orphan.mkdir()
    assert (mine / "Fn" / "app.py").read_text() == "built\n"
    # WHEN another command in the checkout rebuilds the shared folder from a changed input
    sam = Path(os.environ["PATH"].split(os.pathsep)[0]) / "sam"
    sam.write_text(sam.read_text().replace("echo built", "echo rebuilt"))
    (root / "lambdas" / "fn" / "app.py").write_text("def handler(event, context): return 2\n")
    other = ensure_built(root, python, private=True)
    # THEN the stack's copy still holds the build its workers started from, the other its
    # own, the shared folder the new one; and the killed process's copy is gone
    assert (mine / "Fn" / "app.py").read_text() == "built\n"
    assert (other / "Fn" / "app.py").read_text() == "rebuilt\n"
    assert (root / ".aws-sam" / "build" / "Fn" / "app.py").read_text() == "rebuilt\n"
    assert not orphan.exists()
    # AND a copy released is removed, the shared folder never
    release(mine)
    release(root / ".aws-sam" / "build")
    assert not mine.exists() and (root / ".aws-sam" / "build").is_dir()
