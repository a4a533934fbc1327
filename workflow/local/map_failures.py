"""moto's Distributed Map failing as Step Functions fails it: once its failed items pass
the tolerated threshold, and when its ItemReader cannot read its items.

A Distributed Map tolerates no failed item unless its ``ToleratedFailureCount`` or
``ToleratedFailurePercentage`` says otherwise: Step Functions fails the Map Run, and the
Map state, with ``States.ExceedToleratedFailureThreshold``. moto 5.2.5's interpreter does
not apply the threshold ("TODO: add support for failure toleration fields"): it counts a
failed child and lets the Map succeed, its result ``null``. Locally a VOD job with a
failed chunk went on to Publish, which failed it as ``IncompleteOutputError``; on AWS
the Transcode Map fails with ``States.ExceedToleratedFailureThreshold`` and Publish never
runs; RecordFailure names the job's failure, its ``Job Failed`` event and its metric by
the failed item's own error where it recorded one (an item Lambda stopped records none).

An ItemReader that cannot read (the items' object missing, not JSON) fails the Map with
``States.ItemReaderFailed``, which ``States.ALL`` catches; moto let the S3 or JSON error
through as ``States.Runtime``, which it does not (``terminal_errors.py``): locally the job
ended with no ``RecordFailure``. A path its ``Parameters`` name that is not in the input
stays ``States.Runtime``, as on AWS.

``install`` has the Map Run fail with that error once every item has run (Step Functions
stops starting items when the threshold is passed; here the rest still run, which
changes the cost of a failed job, not its outcome). A threshold of 0 counts as not set
unless both are 0, so one given alone applies alone. Like the other patches, it first
checks that moto and the code it wraps are the ones it was written for, and the engine
refuses to start on others.
"""

from __future__ import annotations

from typing import Any

from workflow.local.moto_pins import check_pinned, once

CAUSE = "The specified tolerated failure threshold was exceeded"

# sha256 (first 16 hex digits) of the source of the moto code the patch wraps and reads:
# the Map Run's evaluation, and the worker that counts an item failed or timed out.
EXPECTED_SOURCES = {
    "DistributedIterationComponent._map_run": "e45cb604929ff346",
    "DistributedItemProcessorWorker._eval_job": "c97e0ed4aba18b55",
    "ItemReader._eval_body": "652bd3218835e611",
}

_replaced: dict[str, Any] = {}


def _moto_sources() -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import (
        item_reader_decl as reader,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as component,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as worker,
    )

    return {
        "DistributedIterationComponent._map_run": _replaced.get(
            "_map_run", component.DistributedIterationComponent._map_run
        ),
        "DistributedItemProcessorWorker._eval_job": (
            worker.DistributedItemProcessorWorker._eval_job
        ),
        "ItemReader._eval_body": _replaced.get("read", reader.ItemReader._eval_body),
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the Distributed Map's failure threshold (workflow/local/map_failures.py)",
        _moto_sources(),
        EXPECTED_SOURCES,
    )


def exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether ``failed`` of ``total`` items pass the tolerated count or percentage."""
    limits = []
    if count:
        limits.append(failed > count)
    if percentage:
        limits.append(100 * failed > percentage * total)
    return any(limits) if limits else failed > 0


@once
def install() -> None:
    """Have a Distributed Map fail past its tolerated failures (once per process)."""
    check()
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
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
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.item_reader_decl import (  # noqa: E501
        ItemReader,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError

    def failure(env: Any, typ: Any, cause: str) -> Any:
        details = MapRunFailedEventDetails(error=typ.to_name(), cause=cause)
        return FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=typ),
                event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(mapRunFailedEventDetails=details),  # type: ignore[typeddict-item]
            )
        )

    map_run = DistributedIterationComponent._map_run
    _replaced["_map_run"] = map_run

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        map_run(self, env=env, eval_input=eval_input)
        record = eval_input.map_run_record
        items = record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        if not exceeded(
            failed,
            items.total.get(),
            record.tolerated_failure_count,
            record.tolerated_failure_percentage,
        ):
            return
        raise failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold, CAUSE)

    read = ItemReader._eval_body
    _replaced["read"] = read

    def _read(self: Any, env: Any) -> None:
        try:
            read(self, env)
        except (FailureEventException, NoSuchJsonPathError):
            raise
        except Exception as error:
            raise failure(env, StatesErrorNameType.StatesItemReaderFailed, str(error)) from error

    DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]
    ItemReader._eval_body = _read  # type: ignore[method-assign]
