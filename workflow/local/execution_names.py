"""Execution names the local stack refuses as Step Functions does.

moto 5.2.5's interpreter (``StepFunctionsParserBackend.start_execution``) takes any name
("TODO: validate name format"): one of 81 characters, or with a space, ``:``, ``/`` or ``#``,
ran locally and would be refused on AWS (``InvalidName``, or a ``ValidationException`` past
80 characters). moto's own backend checks names as AWS does
(``StepFunctionBackend._validate_name``); here the interpreter's start runs that check
first. Like the other patches, it checks moto's version and the source of what it relies
on first, and the engine refuses to start on another.

moto also holds an Express machine to a Standard one's names (the same name and input
while running is that execution; else ``ExecutionAlreadyExists``). Express keeps no names:
each start runs, so a segment's event delivered twice runs its execution twice on AWS,
and here too.
"""

from __future__ import annotations

import uuid
from typing import Any

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of the moto methods the patch wraps and uses.
EXPECTED_SOURCES = {
    "StepFunctionsParserBackend.start_execution": "0f8d9dd57baf0c28",
    "StepFunctionBackend._validate_name": "806d9e79745ec339",
}

_replaced: dict[str, Any] = {}


def _moto_sources() -> dict[str, Any]:
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    return {
        "StepFunctionsParserBackend.start_execution": _replaced.get(
            "start_execution", StepFunctionsParserBackend.start_execution
        ),
        "StepFunctionBackend._validate_name": StepFunctionBackend._validate_name,
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the execution-name patch (workflow/local/execution_names.py)",
        _moto_sources(),
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Patch moto (once per process) so the interpreter refuses the names AWS refuses."""
    check()
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = StepFunctionsParserBackend.start_execution
    _replaced["start_execution"] = start

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if name:
            self._validate_name(name)
            machine = self.describe_state_machine(state_machine_arn)
            if machine.type == "EXPRESS" and any(e.name == name for e in machine.executions):
                # Express keeps no names: a name started again runs again, at once, beside
                # any still running ("concurrent executions", AWS's execution guarantees),
                # under an ARN of its own, as an Express ARN ends in an id of its own.
                again = f"{name}:{uuid.uuid4().hex[:12]}"
                execution = start(self, state_machine_arn, again, *args, **kwargs)
                execution.name = name
                return execution
        return start(self, state_machine_arn, name, *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
