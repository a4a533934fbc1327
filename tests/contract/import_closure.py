"""The static import closure of each Lambda function, checked against its artefacts.

On Lambda a handler can import only its own folder, its layers' ``python/`` folders, the
standard library and the boto3 the Python runtime ships. This module finds, without
running anything, which modules a function's code would reach that none of those provide.

Discovery uses the standard library's :class:`modulefinder.ModuleFinder`, which reads a
module's whole bytecode, so imports inside function bodies count. Whether a missing
module is a real miss is then decided from the source (see :func:`missing_imports`).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from modulefinder import Module, ModuleFinder
from pathlib import Path
from types import CodeType
from typing import Any

from workflow.local.template import load_template

# What the Lambda Python runtime puts on sys.path besides the standard library.
LAMBDA_RUNTIME_MODULES = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
)
# Top-level standard-library modules that a Python version no longer has (PEP 594, 632).
REMOVED_FROM_STDLIB = {
    (3, 12): frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"}),
    (3, 13): frozenset(
        {
            "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3",
            "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd",
            "sunau", "telnetlib", "uu", "xdrlib",
        }
    ),
}  # fmt: skip
_C_EXTENSION = 3  # modulefinder's kind for an extension module
_RUNTIME = re.compile(r"python(\d+)\.(\d+)")
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def function_paths(template_path: Path, build_dir: Path) -> dict[str, list[Path]]:
    """Each function's import path on Lambda, as ``sam build`` lays it out in ``build_dir``.

    ``[build_dir/<Function>, build_dir/<Layer>/python, ...]``, the layers being the
    template's ``Globals.Function.Layers`` followed by the function's own, in order.
    """
    template = load_template(template_path)
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    paths = {}
    for lid, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = [*global_layers, *resource["Properties"].get("Layers", [])]
        paths[lid] = [build_dir / lid] + [
            build_dir / _layer_id(lid, ref) / "python" for ref in layers
        ]
    return paths


def handler_modules(template_path: Path) -> dict[str, str]:
    """Each function's handler module: ``Handler: app.handler`` gives ``app``."""
    template = load_template(template_path)
    default = template.get("Globals", {}).get("Function", {}).get("Handler")
    return {
        lid: (resource["Properties"].get("Handler") or default).rsplit(".", 1)[0]
        for lid, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def runtime_python(template_path: Path) -> tuple[int, int]:
    """The Python version of the template's functions (``python3.12`` gives ``(3, 12)``)."""
    return _uniform_setting(template_path, "Runtime", _python_version)


def runtime_architecture(template_path: Path) -> str:
    """The one architecture of the template's functions (``x86_64`` or ``arm64``)."""
    return _uniform_setting(template_path, "Architectures", _one_architecture)


def missing_imports(
    paths: Sequence[Path],
    runtime_modules: Iterable[str] = LAMBDA_RUNTIME_MODULES,
    *,
    entry: str = "app",
    python: tuple[int, int] | None = None,
    project_packages: Sequence[str] = ("workflow",),
) -> dict[str, str]:
    """Modules that ``entry`` reaches and that nothing on Lambda provides.

    ``paths`` is the function's import path (its folder first, then its layers); the
    standard library of ``python`` (default: the running interpreter's version) and
    ``runtime_modules`` count as present and are not scanned. Returns ``{missing
    module: the module(s) importing it}``, empty when the closure is complete. The
    standard library is taken by name (``sys.stdlib_module_names`` less what ``python``
    removed), not searched in the running interpreter's folders: those would still find
    ``imp`` or ``distutils``, which a newer runtime lacks, and scanning them is slow.

    A module is missing when a search of ``paths`` finds no source, bytecode, package or
    extension built for ``python``. Whether that matters depends on who imports it:

    - **Project code** (``entry``, any module in the function's own folder, and the
      ``project_packages``): every import counts, wherever it is: in a function body, in
      a ``try`` that catches ``ImportError``. The rule is that whatever a handler can
      reach resolves from its artefacts; a guard there only trades an import error for
      a missing feature. Only imports under ``if TYPE_CHECKING:`` are ignored, as they
      never run.
    - **Libraries** (anything else found on ``paths``): only imports that run whenever
      the library module itself is imported count, and only for modules that project code
      imports, or that such a module imports that way, transitively. An import that runs
      on import is one at module or class level that is not under an ``if``, a loop, or a
      ``try`` catching ``ImportError`` (or broader). A library's optional dependencies
      (``aws_xray_sdk``, ``pydantic``, ... for powertools) and its imports inside
      functions are its own business: whether they run depends on how it is called.
    - ``from pkg import name`` where ``pkg`` was found is an attribute, not a module, when
      ``pkg`` is a plain module, or ``name`` is assigned in the package's ``__init__``, or
      the package defines ``__getattr__`` or star-imports an extension module (then it
      cannot be told statically). Otherwise it is a missing submodule.
    - A miss under an already missing package is reported once, as the package.
    """
    version = python or sys.version_info[:2]
    present = (stdlib_modules(version) | set(runtime_modules)) - {entry}
    return _missing([str(p) for p in paths], frozenset(present), entry, version, project_packages)


def stdlib_modules(python: tuple[int, int]) -> frozenset[str]:
    """Top-level standard-library module names of ``python`` (from the running one's)."""
    removed: set[str] = set()
    for since, names in REMOVED_FROM_STDLIB.items():
        if sys.version_info[:2] < since <= python:
            removed |= names
    return frozenset(sys.stdlib_module_names - removed)


@dataclass(frozen=True)
class _Import:
    """One import statement: what modulefinder may record for it, and when it runs."""

    recorded: Mapping[str, str]  # name as modulefinder records it -> absolute module name
    runs: str  # "always" on import, "maybe" (function, guard, branch), "never" (TYPE_CHECKING)


@dataclass(frozen=True)
class _Found:
    """What modulefinder learnt about a module it found (typeshed does not declare it)."""

    name: str
    file: str | None
    is_package: bool
    globalnames: frozenset[str]
    starimports: bool

    @classmethod
    def of(cls, module: Module) -> _Found:
        found = vars(module)
        return cls(
            found["__name__"],
            found["__file__"],
            bool(found["__path__"]),
            frozenset(found["globalnames"]),
            bool(found["starimports"]),
        )


class _Finder(ModuleFinder):
    """A ModuleFinder that names the importer of ``from . import x``, and that finds
    extension modules by the target Python's file names, not the running one's."""

    def __init__(self, path: list[str], excludes: list[str], python: tuple[int, int]) -> None:
        super().__init__(path=path, excludes=excludes)
        self._scanning: list[Module] = []
        tag = f"cpython-{python[0]}{python[1]}-"
        self._native = re.compile(rf"\.({re.escape(tag)}[^.]+|abi3)?\.so$")

    def scan_code(self, co: CodeType, m: Module) -> None:
        self._scanning.append(m)
        try:
            super().scan_code(co, m)
        finally:
            self._scanning.pop()

    def _add_badmodule(self, name: str, caller: Module | None) -> None:
        # modulefinder passes no caller for `from . import x`: it is the module being read.
        caller = caller or (self._scanning[-1] if self._scanning else None)
        super()._add_badmodule(name, caller)  # type: ignore[misc]  # private, not in typeshed

    def find_module(self, name: str, path: Any, parent: Module | None = None) -> Any:
        fullname = f"{vars(parent)['__name__']}.{name}" if parent is not None else name
        if fullname in self.excludes:
            raise ImportError(name)
        try:
            found = super().find_module(name, path, parent)
        except ImportError:
            found = None
        if found is not None and (
            found[2][2] != _C_EXTENSION or self._native.search(found[1] or "")
        ):
            return found
        if found is not None and found[0] is not None:
            found[0].close()
        for folder in self.path if path is None else path:
            for candidate in sorted(Path(folder).glob(f"{name}.*so")):
                if self._native.search(candidate.name) and candidate.name.startswith(name + "."):
                    return None, str(candidate), ("", "", _C_EXTENSION)
        raise ImportError(f"No module named {name!r}", name=name)


def _missing(
    paths: list[str],
    present: frozenset[str],
    entry: str,
    python: tuple[int, int],
    project_packages: Sequence[str],
) -> dict[str, str]:
    finder = _Finder(paths, sorted(present), python)
    with _quiet():
        finder.import_hook(entry)
    modules = {name: _Found.of(module) for name, module in finder.modules.items()}
    own = Path(paths[0]).resolve()
    project = {
        name
        for name, module in modules.items()
        if name == entry
        or name.split(".")[0] in project_packages
        or (module.file and own in Path(module.file).resolve().parents)
    }
    imports = {name: _imports_of(module) for name, module in modules.items()}
    eager = _eagerly_imported(modules, project, imports)
    found: dict[str, set[str]] = {}
    for recorded, importers in finder.badmodules.items():
        for importer in importers:
            name = _real_miss(modules, recorded, importer, present, project, eager, imports)
            if name is not None:
                found.setdefault(name, set()).add(importer)
    reported = {
        name: ", ".join(sorted(importers))
        for name, importers in found.items()
        if not any(name.startswith(f"{other}.") for other in found)
    }
    return dict(sorted(reported.items()))


def _real_miss(
    modules: Mapping[str, _Found],
    recorded: str,
    importer: str,
    present: frozenset[str],
    project: set[str],
    eager: set[str],
    imports: Mapping[str, list[_Import]],
) -> str | None:
    """The absolute name of ``recorded`` if its import by ``importer`` is a real miss."""
    sites = [s for s in imports.get(importer, []) if recorded in s.recorded]
    name = sites[0].recorded[recorded] if sites else recorded
    if name.split(".")[0] in present or _is_attribute(modules, name):
        return None
    parts = name.split(".")  # report the outermost missing package, not each name under it
    name = next(
        prefix
        for prefix in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        if prefix not in modules
    )
    if importer in project:
        return name if not sites or any(s.runs != "never" for s in sites) else None
    if importer in eager:
        return name if any(s.runs == "always" for s in sites) else None
    return None


def _is_attribute(modules: Mapping[str, _Found], name: str) -> bool:
    parent_name, _, leaf = name.rpartition(".")
    parent = modules.get(parent_name)
    if parent is None:
        return False
    return (
        not parent.is_package
        or leaf in parent.globalnames
        or "__getattr__" in parent.globalnames
        or parent.starimports
    )


def _eagerly_imported(
    modules: Mapping[str, _Found], project: set[str], imports: Mapping[str, list[_Import]]
) -> set[str]:
    """Library modules that run when project code runs: imported by project code, or by
    such a module on its own import (see :func:`missing_imports`)."""
    reached: set[str] = set()
    todo = [(name, "maybe") for name in project]
    while todo:
        name, needed = todo.pop()
        for site in imports.get(name, []):
            if site.runs == "never" or (needed == "always" and site.runs != "always"):
                continue
            for target in site.recorded.values():
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:i])
                    if prefix in modules and prefix not in project and prefix not in reached:
                        reached.add(prefix)
                        todo.append((prefix, "always"))
    return reached


def _imports_of(module: _Found) -> list[_Import]:
    if not module.file or not module.file.endswith(".py"):
        return []
    mtime = os.stat(module.file).st_mtime_ns
    return _imports_in(module.file, mtime, module.name, module.is_package)


@cache
def _imports_in(file: str, mtime_ns: int, name: str, is_package: bool) -> list[_Import]:
    """Every import statement in ``file``, with when it runs."""
    try:
        with _quiet():
            tree = ast.parse(Path(file).read_bytes(), file)
    except (SyntaxError, ValueError):
        return []
    package = name if is_package else name.rpartition(".")[0]
    found: list[_Import] = []

    def visit(statements: Iterable[ast.stmt], runs: str) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(_Import(_recorded_names(node, package), runs))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body, _weaker(runs, "maybe"))
            elif isinstance(node, ast.ClassDef | ast.With | ast.AsyncWith):
                visit(node.body, runs)
            elif isinstance(node, ast.If):
                typing_only = _is_type_checking(node.test)
                visit(node.body, "never" if typing_only else _weaker(runs, "maybe"))
                visit(node.orelse, runs if typing_only else _weaker(runs, "maybe"))
            elif isinstance(node, ast.Try | ast.TryStar):
                guarded = any(_catches_import_error(h.type) for h in node.handlers)
                visit(node.body, _weaker(runs, "maybe") if guarded else runs)
                for handler in node.handlers:
                    visit(handler.body, _weaker(runs, "maybe"))
                visit(node.orelse, _weaker(runs, "maybe"))
                visit(node.finalbody, runs)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.While):
                visit([*node.body, *node.orelse], _weaker(runs, "maybe"))
            elif isinstance(node, ast.Match):
                for case in node.cases:
                    visit(case.body, _weaker(runs, "maybe"))

    visit(tree.body, "always")
    return found


def _recorded_names(node: ast.Import | ast.ImportFrom, package: str) -> dict[str, str]:
    if isinstance(node, ast.Import):
        return {alias.name: alias.name for alias in node.names}
    names = [alias.name for alias in node.names if alias.name != "*"]
    if not node.level:
        base = node.module or ""
        return {base: base} | {f"{base}.{n}": f"{base}.{n}" for n in names}
    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    absolute = f"{anchor}.{node.module}" if node.module else anchor
    recorded = {absolute: absolute} | {f"{absolute}.{n}": f"{absolute}.{n}" for n in names}
    if node.module:  # modulefinder records a failed relative import by its relative name
        recorded |= {node.module: absolute} | {
            f"{node.module}.{n}": f"{absolute}.{n}" for n in names
        }
    return recorded


def _weaker(runs: str, other: str) -> str:
    order = ["always", "maybe", "never"]
    return max(runs, other, key=order.index)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(caught: ast.expr | None) -> bool:
    if caught is None:
        return True
    if isinstance(caught, ast.Tuple):
        return any(_catches_import_error(element) for element in caught.elts)
    name = caught.id if isinstance(caught, ast.Name) else getattr(caught, "attr", "")
    return name in _IMPORT_ERRORS


@contextmanager
def _quiet() -> Iterator[None]:
    """Compiling libraries' sources must not warn about their escape sequences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _layer_id(function: str, ref: Any) -> str:
    if isinstance(ref, dict) and isinstance(ref.get("Ref"), str):
        return str(ref["Ref"])
    raise ValueError(f"{function}: layer {ref!r} is not a layer of this template")


def _uniform_setting(template_path: Path, key: str, parse: Any) -> Any:
    template = load_template(template_path)
    default = template.get("Globals", {}).get("Function", {}).get(key)
    values = {
        lid: parse(resource["Properties"].get(key, default))
        for lid, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    distinct = set(values.values())
    if len(distinct) != 1:
        raise ValueError(f"functions differ in {key}: {values}")
    return distinct.pop()


def _python_version(runtime: str) -> tuple[int, int]:
    matched = _RUNTIME.fullmatch(runtime or "")
    if not matched:
        raise ValueError(f"not a Python runtime: {runtime!r}")
    return int(matched[1]), int(matched[2])


def _one_architecture(architectures: list[str] | None) -> str:
    (architecture,) = architectures or ["x86_64"]
    return architecture
