"""A Choice rule whose ``Variable`` path is not in the state's input fails the execution
with ``States.Runtime``, as Step Functions does.

Step Functions fails the execution where a Choice rule reads a path its input lacks
("Invalid path ... : The choice state's condition path references an invalid value"),
unless the rule is ``IsPresent``; ``States.ALL`` does not catch it. moto 5.2.5's
interpreter reads the missing path as a ``NoSuchVariable`` that every comparison finds
false, so locally the Choice went on to its ``Default``: a step whose result lost a field
a Choice reads (LiveProbe's ``duplicate``, a work item's ``kind``, Plan's ``analyse``) ran
on locally and would end every execution on AWS. Like the other patches, it checks
moto's version and the code it wraps first, and the engine refuses to start on others.
"""

from __future__ import annotations

from typing import Any

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of the moto code the patch replaces or reads.
EXPECTED_SOURCES = {
    "ComparisonVariable._eval_body": "55861cce2befeedf",
    "Variable._eval_body": "e2953fc855d24a31",
}

_replaced: dict[str, Any] = {}


def _moto_sources() -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import (  # noqa: E501
        ComparisonVariable,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import (
        Variable,
    )

    return {
        "ComparisonVariable._eval_body": _replaced.get("_eval_body", ComparisonVariable._eval_body),
        "Variable._eval_body": Variable._eval_body,
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the Choice path patch (workflow/local/choice_paths.py)",
        _moto_sources(),
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Have a Choice rule on a missing path fail the execution (once per process)."""
    check()
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (  # noqa: E501
        ComparisonOperatorType,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import (  # noqa: E501
        ComparisonVariable,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import (
        NoSuchVariable,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    _replaced["_eval_body"] = ComparisonVariable._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        self.variable.eval(env)
        present = self.comparison_function.operator_type == ComparisonOperatorType.IsPresent
        if isinstance(env.stack[-1], NoSuchVariable) and not present:
            env.stack.pop()
            path = self.variable.string_sampler.literal_value
            error = StatesErrorNameType.StatesRuntime.to_name()
            cause = (
                f"An error occurred while executing the state '{env.next_state_name}'. "
                f"Invalid path '{path}': The choice state's condition path references "
                "an invalid value."
            )
            raise FailureEventException(
                failure_event=FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]
                        executionFailedEventDetails={"error": error, "cause": cause}
                    ),
                )
            )
        self.comparison_function.eval(env)

    ComparisonVariable._eval_body = _eval_body  # type: ignore[method-assign]
