"""moto's Step Functions interpreter keeping its Lambda clients, as the service does.

moto 5.2.5's interpreter calls ``boto_client_for`` for each Lambda task it runs: a new
boto3 client, which then evaluates Lambda's endpoint rules afresh for its one call. That
was ~0.15 s of the stack's CPU in the VOD bench's run (a dozen tasks: the tasks' calls
82 -> 51 py-spy samples, endpoint resolution 46 -> 1). ``install`` has the interpreter's
Lambda tasks share one client per region and endpoint (botocore's clients are
thread-safe).

Sharing is right only because moto's ``boto_client_for`` makes every client alike: fixed
keys whatever a state's ``Credentials`` assume, one config. Like the S3 patches, the patch
first checks that moto and that code are the ones it was written for, and the engine
refuses to start on others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto function the patch relies on:
# the client maker, and the two Lambda calls that look it up by its module-level name.
EXPECTED_SOURCES = {
    "boto_client_for": "1f44dc2ac8aa2179",
    "_invoke_lambda_function": "0ebcddb746e422b0",
    "exec_lambda_function": "26ae15132de11b87",
}


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    check_pinned(
        "the interpreter's Lambda clients (workflow/local/asl_clients.py)",
        {
            "boto_client_for": boto_client.boto_client_for,
            "_invoke_lambda_function": lambda_eval_utils._invoke_lambda_function,
            "exec_lambda_function": lambda_eval_utils.exec_lambda_function,
        },
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Have the interpreter's Lambda tasks share their clients (once per process)."""
    check()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    lambda_eval_utils.boto_client_for = one_client_each(lambda_eval_utils.boto_client_for)  # type: ignore[attr-defined]


def one_client_each(make: Callable[..., Any]) -> Callable[..., Any]:
    """``make`` (moto's ``boto_client_for``), called once per region, service and endpoint."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    made: dict[tuple[str, str, bool, str], Any] = {}
    lock = threading.Lock()

    def client(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with lock:
            if key not in made:
                made[key] = make(
                    region=region, service=service, state_credentials=state_credentials
                )
            return made[key]

    return client
