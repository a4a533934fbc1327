"""The moto the local stack's patches were written for, and the check each makes first.

The patches (``ranged_get``, ``s3_put``, ``asl_import``, ``asl_clients``, ``fail_errors``,
``eventbridge``, ``dispatch``, ``presigned``, ``dynamodb_size``, ``dynamodb_transactions``,
``execution_names``, ``terminal_errors``, ``map_failures``, ``choice_paths``, ``sse_c``)
lean on moto's private code.
Each pins a digest of the source it relies on; before it patches anything it checks that
moto is ``MOTO_VERSION`` and that the pinned code is unchanged, and otherwise the engine
refuses to start with ``MotoChangedError`` rather than run wrong. Each patches once per
process (``once``; ``asl_import`` while its module is not yet imported, ``dispatch``
never: it only checks).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

MOTO_VERSION = "5.2.5"


class MotoChangedError(RuntimeError):
    """moto is not the version, or its code not the code, a patch was written for."""


def check_pinned(
    patch: str, sources: Mapping[str, Callable[..., Any] | str], expected: dict[str, str]
) -> None:
    """Raise ``MotoChangedError`` unless moto is ``MOTO_VERSION`` and each of ``sources``
    (a function, or a module's source text) still has the digest ``expected`` pins for it."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise MotoChangedError(
            f"moto is {moto.__version__}, {patch} was written for {MOTO_VERSION}: re-read "
            "the moto code it names, then update MOTO_VERSION and its pinned sources"
        )
    changed = [name for name, code in sources.items() if digest(code) != expected[name]]
    if changed:
        raise MotoChangedError(
            f"moto {moto.__version__}'s {', '.join(changed)} differ from the code {patch} "
            "was written for: re-read them, then update its pinned sources"
        )


def digest(code: Callable[..., Any] | str) -> str:
    """sha256 (first 16 hex digits) of a function's source, or of a source text."""
    text = code if isinstance(code, str) else inspect.getsource(code)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def once(install: Callable[[], None]) -> Callable[[], None]:
    """``install``, run at most once per process: a later call, from any thread, returns
    when the first has patched; a call that raised leaves the next to try again."""
    lock = threading.Lock()
    done = False

    @functools.wraps(install)
    def installing() -> None:
        nonlocal done
        with lock:
            if not done:
                install()
                done = True

    return installing
