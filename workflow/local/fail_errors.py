"""moto's Fail state ending an execution with the error its ``ErrorPath`` names, as the
service does, ``States.`` errors included.

Every state machine here catches a failed step, records it (``RecordFailure``) and ends
in a Fail state whose ``ErrorPath`` is the error caught: the service's own where the
service failed the step (``States.ItemReaderFailed``,
``States.ExceedToleratedFailureThreshold``). Step Functions ends the execution with that
name. (``States.DataLimitExceeded`` and ``States.Runtime`` are never caught by
``States.ALL``: ``terminal_errors.py``.) moto 5.2.5's interpreter builds a Fail state's error as a
``CustomErrorName``, which refuses a name beginning with ``States.`` (the ASL
specification keeps the prefix for the service's errors), so locally such a job ended
as ``States.Runtime``, its cause the interpreter's ``ValueError``, and ``vidflow
process`` printed that instead of what failed.

``install`` has the Fail state report the name as it is. Like the S3 patches, it first
checks that moto and the Fail state's code are the ones it was written for, and the
engine refuses to start on others.
"""

from __future__ import annotations

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of the moto code the patch relies on: the
# Fail state's evaluation, which looks ``CustomErrorName`` up by its module-level name.
EXPECTED_SOURCES = {"StateFail._eval_state": "cf3ecff8738e1bb0"}


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    check_pinned(
        "the Fail state's error (workflow/local/fail_errors.py)",
        {"StateFail._eval_state": state_fail.StateFail._eval_state},
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Have Fail states report any error name their path selects (once per process)."""
    check()
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import (
        ErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    class ReportedErrorName(ErrorName):
        """The error a Fail state ends its execution with, whatever its prefix."""

    state_fail.CustomErrorName = ReportedErrorName  # type: ignore[assignment,attr-defined]
