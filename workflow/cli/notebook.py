"""Follow vidflow executions from Python or a notebook with the Step Functions SDK.

The AWS Step Functions Data Science SDK (``pip install 'vidflow[notebook]'``) attaches to
a deployed state machine and lists, follows and renders its executions; in Jupyter,
``execution.render_progress()`` draws the graph with each state's status. The same call
works against a local stack from ``vidflow up``::

    from workflow.cli.notebook import attach
    vod = attach(endpoint_url="http://127.0.0.1:4566")          # or profile="prod"
    for execution in vod.list_executions():
        print(execution.execution_arn, execution.describe()["status"])

It pins ``sagemaker<3``, so it is an optional extra and never in a Lambda package.
"""

from __future__ import annotations

import os
from typing import Any

import boto3


def attach(
    state_machine_arn: str | None = None,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    stack_name: str = "vidflow",
) -> Any:
    """A ``stepfunctions.workflow.Workflow`` for vidflow's VOD state machine.

    Without an ARN, the state machine is the one named ``<stack_name>-vod`` (the
    template's name for it) among those the account (or the local stack) has.
    """
    # The SDK needs sagemaker<3; its deprecation banner is known, and noise in a notebook.
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from stepfunctions.workflow import Workflow

    session = boto3.Session(profile_name=profile, region_name=region or "us-east-1")
    client = session.client("stepfunctions", endpoint_url=endpoint_url)
    if state_machine_arn is None:
        wanted = f"{stack_name}-vod"
        pages = client.get_paginator("list_state_machines").paginate()
        matches = [m for page in pages for m in page["stateMachines"] if m["name"] == wanted]
        if not matches:
            raise LookupError(f"no state machine named {wanted}")
        state_machine_arn = matches[0]["stateMachineArn"]
    return Workflow.attach(state_machine_arn, client=client)
