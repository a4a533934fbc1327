"""``sam build``, run when the sources changed, and the interpreter the functions run on.

The local engine runs every function from the artefacts ``sam build`` makes, the same
folders ``sam deploy`` uploads. A build is skipped when a hash of its inputs (the
template, the functions' code, the layers' recipes and the runtime package) matches the
one stored beside the last build. The functions run on the template's Python when the
machine has it; otherwise the layers are built for the Python that is here, and the
engine says so once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflow.local.template import Stack

log = logging.getLogger("vidflow.build")

BUILD_DIR = Path(".aws-sam") / "build"
_STAMP = ".vidflow-inputs"
# What `sam build` reads: the functions' code, the layers' recipes, the runtime package.
_INPUTS = ("sam-template.yaml", "lambdas", "layers")
_SKIPPED = {"__pycache__", "node_modules", ".pytest_cache"}


class BuildError(Exception):
    """``sam build`` is missing or failed; the message says which and how."""


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs function workers, and the version the layers are built for."""

    path: Path
    version: str  # "3.12"

    @property
    def matches(self) -> str:
        return f"python{self.version}"


@functools.cache
def find_interpreter(runtime: str) -> Interpreter:
    """A Python of the template's ``Runtime`` (``python3.12``) if this machine has one.

    Looked for on ``PATH``, then in pyenv's versions; else the Python running this
    process, for which the layers are then built instead.
    """
    wanted = runtime.removeprefix("python")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    on_path = shutil.which(f"python{wanted}")
    # A pyenv shim is bash scripts in front of a Python of pyenv's versions, looked at
    # next anyway: asking it costs 0.13 s, and every worker started through it would pay
    # that again.
    candidates = (
        [] if on_path is None or Path(on_path).parent == pyenv_root / "shims" else [on_path]
    )
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{wanted}*/bin/python{wanted}"))
    candidates += [f"/usr/bin/python{wanted}", f"/usr/local/bin/python{wanted}"]
    for candidate in candidates:
        if _version_of(candidate) == wanted:
            return Interpreter(Path(candidate), wanted)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    log.warning(
        "no %s on this machine: functions run on Python %s, with layers built for it", runtime, here
    )
    return Interpreter(Path(getattr(sys, "_base_executable", sys.executable)), here)


def _version_of(executable: str) -> str | None:
    try:
        done = subprocess.run(
            [executable, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# The Workflow layer's allow-list (layers/workflow/Makefile says the same; a contract test
# holds the two together): the core modules and these subpackages, never `local` or `cli`.
RUNTIME_SUBPACKAGES = ("media", "formats", "vod", "live", "keys")


def runtime_files(root: Path) -> list[Path]:
    """The files of the runtime package that the Workflow layer ships."""
    workflow = root / "workflow"
    files = list(workflow.glob("*.py"))
    for package in RUNTIME_SUBPACKAGES:
        files += [*(workflow / package).glob("*.py"), *(workflow / package).glob("*.json")]
    return sorted(files)


def inputs_hash(root: Path, python_version: str) -> str:
    """A hash of everything ``sam build`` reads for this template, and the target Python."""
    digest = hashlib.sha256(python_version.encode())
    files = [root / "sam-template.yaml"]
    for folder in _INPUTS[1:]:
        files += _files_under(root / folder)
    files += runtime_files(root)
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _files_under(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED)
        found += [Path(dirpath) / name for name in sorted(filenames)]
    return found


def ensure_built(
    root: Path, interpreter: Interpreter, build_dir: Path | None = None, *, private: bool = False
) -> Path:
    """The template's ``sam build`` folder, rebuilt first if any input changed; with
    ``private``, a copy of it that is this process's until ``release`` (see ``_copy``).

    Safe to call from several processes at once: one builds while the others wait.
    """
    build_dir = build_dir or root / BUILD_DIR
    wanted = inputs_hash(root, interpreter.version)
    stamp = build_dir / _STAMP
    with _locked(build_dir.parent / ".vidflow-build.lock"):
        if not (stamp.is_file() and stamp.read_text() == wanted):
            began = time.monotonic()
            _sam_build(root, build_dir, interpreter)
            stamp.write_text(wanted)
            log.info("sam build took %.1f s", time.monotonic() - began)
        return _copy(build_dir) if private else build_dir


def _copy(build_dir: Path) -> Path:
    """The build, hard-linked into a folder of this process's own (milliseconds, no bytes
    copied). A running stack's workers read their artefacts from it while another command
    in the same checkout (``vidflow invoke``, ``process``) rebuilds the shared folder:
    they keep the build they started with instead of losing their working folder. Where
    links cannot be made, the shared folder itself."""
    engines = build_dir.parent / "engines"
    engines.mkdir(exist_ok=True)
    for folder in engines.iterdir():  # left by a process that was killed
        owner = folder.name.partition("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
    copy = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=engines)) / build_dir.name
    try:
        shutil.copytree(build_dir, copy, symlinks=True, copy_function=os.link)
    except OSError as exc:
        log.info("artefacts read from %s: no hard links there (%s)", build_dir, exc)
        shutil.rmtree(copy.parent, ignore_errors=True)
        return build_dir
    return copy


def release(build: Path) -> None:
    """Remove a private copy that ``ensure_built`` made; the shared folder stays."""
    if build.parent.parent.name == "engines":
        shutil.rmtree(build.parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's
    return True


def ensure_stack_built(stack: Stack) -> Path:
    """``ensure_built`` for a stack's template, for the Python its functions run on."""
    return ensure_built(stack.root, find_interpreter(stack.runtime()))


def _sam_build(root: Path, build_dir: Path, interpreter: Interpreter) -> None:
    sam = shutil.which("sam") or shutil.which("sam", path=str(Path(sys.executable).parent))
    if sam is None:
        raise BuildError("sam not found: install the AWS SAM CLI (`pip install aws-sam-cli`)")
    if build_dir.exists():
        shutil.rmtree(build_dir)
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        # Read by the layers' Makefiles: wheels for the Python the workers run.
        "PYTHON_VERSION": interpreter.version,
        # and their bytecode, compiled by that Python.
        "RUNTIME_PYTHON": str(interpreter.path),
    }
    if importlib.util.find_spec("pip") is not None:
        # The layers' wheels are fetched by this environment's pip (`make demo`'s venv has
        # one), not by the `python3 -m pip` of PATH: Debian and Ubuntu ship that python3
        # without pip, and every build there failed ('No module named pip').
        env["PIP"] = f"{shlex.quote(sys.executable)} -m pip"
    done = subprocess.run(
        [sam, "build", "--template", "sam-template.yaml", "--build-dir", str(build_dir)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(f"sam build failed in {root}:\n{tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The packages the Lambda Python runtime itself provides (boto3 and what it needs).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def runtime_folder(root: Path) -> Path:
    """A folder with only what Lambda's runtime adds to a function: boto3 and its needs.

    Copied from this environment's boto3 (pure Python) into ``.aws-sam/``, so a worker's
    import path never names the development environment.
    """
    folder = root / ".aws-sam" / "lambda-runtime"
    import boto3

    marker = folder / f".boto3-{boto3.__version__}"
    with _locked(root / ".aws-sam" / ".vidflow-runtime.lock"):
        if not marker.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            for name in RUNTIME_PACKAGES:
                module = __import__(name)
                source = Path(module.__file__ or "")
                if source.name == "__init__.py":
                    shutil.copytree(
                        source.parent,
                        folder / name,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    shutil.copy2(source, folder / source.name)
            marker.touch()
        bootstrap = Path(__file__).with_name("bootstrap.py")
        target = folder / "vidflow_bootstrap.py"
        if not target.exists() or target.read_bytes() != bootstrap.read_bytes():
            shutil.copy2(bootstrap, target)
    return folder
