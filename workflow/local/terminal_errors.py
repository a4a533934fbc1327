"""moto's Retry and Catch leaving ``States.Runtime`` and ``States.DataLimitExceeded`` to end
the execution, as Step Functions does.

Step Functions' ``States.ALL`` matches any error but those two: a state whose result,
input or output is over 256 KiB (``States.DataLimitExceeded``), or whose paths do not
apply to its data (``States.Runtime``: a ``ResultSelector`` naming a field the function
did not return), fails the execution there and then, whatever its ``Retry`` and
``Catch`` say. moto 5.2.5's interpreter lets ``States.ALL`` match them too, so locally
such a step was retried, caught, recorded by ``RecordFailure`` (``failures/<job>.json``,
``Job Failed``) and the job's partial output removed, none of which happens on AWS.

``install`` has ``States.ALL`` pass those two by; a retrier or catcher naming one still
matches it. Like the other patches, it first checks that moto and the code it wraps are
the ones it was written for, and the engine refuses to start on others.
"""

from __future__ import annotations

from typing import Any

from workflow.local.moto_pins import check_pinned, once

# Errors ``States.ALL`` does not match (Step Functions' "Error names", under States.ALL).
TERMINAL = frozenset({"States.DataLimitExceeded", "States.Runtime"})

# sha256 (first 16 hex digits) of the source of the moto code the patch wraps: how a
# retrier's or catcher's ErrorEquals matches the error on the stack.
EXPECTED_SOURCES = {"ErrorEqualsDecl._eval_body": "aeda14a0cc01747d"}

_replaced: dict[str, Any] = {}


def _moto_sources() -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )

    return {"ErrorEqualsDecl._eval_body": _replaced.get("_eval_body", ErrorEqualsDecl._eval_body)}


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the States.ALL patch (workflow/local/terminal_errors.py)",
        _moto_sources(),
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Have ``States.ALL`` leave the terminal errors uncaught (once per process)."""
    check()
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )

    match = ErrorEqualsDecl._eval_body
    _replaced["_eval_body"] = match

    def _eval_body(self: Any, env: Any) -> None:
        error = env.stack[-1]
        if getattr(error, "error_name", None) in TERMINAL:
            env.stack.pop()
            env.stack.append(error in self.error_names)
            return
        match(self, env)

    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]
