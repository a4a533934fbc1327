"""A function's import closure is its artefacts (DESIGN.md): every module a handler can reach
resolves from its own `sam build` folder, its layers and the runtime's boto3, and the layers
carry only what the template's runtime can load."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from tests.contract.import_closure import (
    LAMBDA_RUNTIME_MODULES,
    function_paths,
    handler_modules,
    missing_imports,
    runtime_architecture,
    runtime_python,
)
from workflow.local.build import find_interpreter, runtime_files
from workflow.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "sam-template.yaml"
FIXTURE = Path(__file__).parent / "fixtures" / "closure" / "sam-template.yaml"
FUNCTIONS = sorted(handler_modules(TEMPLATE))
# The laptop's cloud and tools: `workflow.local`, `workflow.cli` and what lives in them.
LOCAL_ONLY = {
    "local", "cli", "engine", "functions", "template", "faults", "origin", "console", "monitor",
    "terminal", "notebook", "venue", "main", "lambda_runtime", "bootstrap",
}  # fmt: skip
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}


def _closures(template: Path, build: Path) -> dict[str, dict[str, str]]:
    entries, python = handler_modules(template), runtime_python(template)
    return {
        function: missing_imports(
            paths, LAMBDA_RUNTIME_MODULES, entry=entries[function], python=python
        )
        for function, paths in function_paths(template, build).items()
    }


def _fixture_build(out: Path) -> Path:
    """The fixture laid out as `sam build` lays out plain resources: each CodeUri or
    ContentUri copied under the resource's logical id."""
    for lid, resource in load_template(FIXTURE)["Resources"].items():
        props = resource["Properties"]
        shutil.copytree(FIXTURE.parent / (props.get("CodeUri") or props["ContentUri"]), out / lid)
    return out


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_reaches_only_its_artefacts(build_dir: Path, function: str) -> None:
    # GIVEN the function's folder and layers as built
    paths = function_paths(TEMPLATE, build_dir)[function]
    # WHEN its handler's import closure is resolved against them alone
    missing = missing_imports(
        paths, entry=handler_modules(TEMPLATE)[function], python=runtime_python(TEMPLATE)
    )
    # THEN nothing is left that only the developer's venv provides
    assert missing == {}, f"{function} cannot import on Lambda: " + "; ".join(
        f"{module} (imported by {importer})" for module, importer in missing.items()
    )


def test_a_planted_bad_import_is_named(tmp_path: Path) -> None:
    # GIVEN BadFunction's handler lazily imports a helper that imports fakeav, which only
    # AvLayer carries, and only GoodFunction has AvLayer
    build = _fixture_build(tmp_path)
    # WHEN both closures are resolved
    found = _closures(FIXTURE, build)
    # THEN BadFunction is named with fakeav and its importer; GoodFunction passes, though
    # its layer's library has optional imports (guarded, lazy, typing-only) it does not meet
    assert found == {"GoodFunction": {}, "BadFunction": {"fakeav": "helper"}}


@pytest.mark.parametrize(
    ("removed", "missing"),
    [
        ("GoodFunction/tools/render.py", {"tools.render": "app"}),
        ("AvLayer/python/fakedep.py", {"fakedep": "fakelib"}),
    ],
    ids=["submodule-of-own-package", "hard-dependency-of-a-library"],
)
def test_a_removed_module_is_named(tmp_path: Path, removed: str, missing: dict[str, str]) -> None:
    # GIVEN a good build with one module taken out of it
    build = _fixture_build(tmp_path)
    (build / removed).unlink()
    # WHEN the closures are resolved
    found = _closures(FIXTURE, build)
    # THEN the function that reaches it names it and its importer
    assert found["GoodFunction"] == missing


def test_workflow_layer_ships_no_local_module(build_dir: Path) -> None:
    # GIVEN the workflow package as the layer carries it
    package = build_dir / "WorkflowLayer" / "python" / "workflow"
    shipped = {
        f.relative_to(package).as_posix()
        for f in package.rglob("*")
        if f.is_file() and f.parent.name != "__pycache__"
    }
    # WHEN its files are matched against the local-only names
    local = sorted(
        name for name in shipped if LOCAL_ONLY & set(PurePosixPath(name).with_suffix("").parts)
    )
    # THEN none ships, and what ships is exactly the runtime package's allow-list
    assert not local, f"the workflow layer ships local-only code: {local}"
    allowed = {f.relative_to(ROOT / "workflow").as_posix() for f in runtime_files(ROOT)}
    assert shipped == allowed, (
        f"not in the allow-list: {sorted(shipped - allowed)}; missing: {sorted(allowed - shipped)}"
    )


def _layer_folders(build_dir: Path) -> list[Path]:
    """Each built layer's ``python/`` folder (what Lambda puts on the import path)."""
    return [
        build_dir / lid / "python"
        for lid, resource in load_template(TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
        and (build_dir / lid / "python").is_dir()
    ]


# Run by the runtime's Python: prints each layer source whose bytecode that Python would not
# load as it is (missing, another version's, or not checked against this source).
_STALE_BYTECODE = """
import importlib.util, json, sys
from pathlib import Path
stale = []
for source in sorted(p for folder in sys.argv[1:] for p in Path(folder).rglob("*.py")):
    cached = Path(importlib.util.cache_from_source(source))
    head = cached.read_bytes()[:16] if cached.is_file() else b""
    fresh = (
        head[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(head[4:8], "little") == 0b11
        and head[8:] == importlib.util.source_hash(source.read_bytes())
    )
    if not fresh:
        stale.append(str(source))
print(json.dumps(stale))
"""


def test_every_layer_module_has_checked_bytecode_for_the_runtime(build_dir: Path) -> None:
    # GIVEN the Python layers as `sam build` made them (Lambda's /opt is read-only: a module
    # without bytecode there is compiled again at every cold start)
    folders = [str(folder) for folder in _layer_folders(build_dir)]
    assert len(folders) >= 2
    # WHEN the runtime's Python looks for each source's bytecode
    major, minor = runtime_python(TEMPLATE)
    python = find_interpreter(f"python{major}.{minor}")
    done = subprocess.run(
        [str(python.path), "-I", "-S", "-c", _STALE_BYTECODE, *folders],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # THEN every one is there for that version, and checked against its source's hash
    assert done.returncode == 0, done.stderr[-2000:]
    stale = json.loads(done.stdout)
    assert not stale, f"{len(stale)} without fresh bytecode, e.g. {stale[:5]}"


def test_every_wheel_matches_the_runtime(build_dir: Path) -> None:
    # GIVEN the template's runtime and every layer's python/ folder
    python, machine = runtime_python(TEMPLATE), MACHINES[runtime_architecture(TEMPLATE)]
    folders = _layer_folders(build_dir)
    assert folders
    # WHEN every wheel tag and native library is read
    # (a universal wheel lists one tag per Python it installs on: py2-none-any and
    # py3-none-any; one tag that runs is enough)
    tags = {
        str(wheel.relative_to(build_dir)): [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        for folder in folders
        for wheel in folder.glob("*.dist-info/WHEEL")
    }
    libraries = {
        str(f.relative_to(build_dir))
        for folder in folders
        for f in folder.rglob("*.so*")
        if f.is_file() and re.search(r"\.so(\.\d+)*$", f.name)
    }
    # THEN each is built for that runtime's CPython and machine
    wrong_tags = sorted(
        f"{wheel}: {', '.join(listed)}"
        for wheel, listed in tags.items()
        if not any(_tag_runs(tag, python, machine) for tag in listed)
    )
    assert not wrong_tags, f"wheels not for python{python[0]}.{python[1]} {machine}: {wrong_tags}"
    wrong_libraries = sorted(f for f in libraries if not _loads(Path(f), python, machine))
    assert not wrong_libraries, (
        f"native files python{python[0]}.{python[1]} on {machine} cannot load: {wrong_libraries}"
    )


def _tag_runs(tag: str, python: tuple[int, int], machine: str) -> bool:
    """Whether a wheel tag (``cp312-cp312-manylinux_2_28_x86_64``) runs on the runtime."""
    interpreter, abi, platforms = tag.split("-")
    if abi == "none" and platforms == "any":
        return interpreter in {"py3", "py2.py3"}
    on_machine = all(
        p == "any" or re.fullmatch(rf"manylinux\w*_{machine}", p) for p in platforms.split(".")
    )
    cpython = f"cp{python[0]}{python[1]}"
    if abi == cpython:
        return interpreter == cpython and on_machine
    stable = re.fullmatch(rf"cp{python[0]}(\d+)", interpreter)
    return abi == "abi3" and stable is not None and int(stable[1]) <= python[1] and on_machine


def _loads(library: Path, python: tuple[int, int], machine: str) -> bool:
    """Whether a ``.so`` is an extension for the runtime, or a plain library auditwheel
    vendored into a ``.libs`` folder."""
    extension = f".cpython-{python[0]}{python[1]}-{machine}-linux-gnu.so"
    return library.name.endswith((extension, ".abi3.so")) or (
        library.parent.name.endswith(".libs") and library.name.startswith("lib")
    )
