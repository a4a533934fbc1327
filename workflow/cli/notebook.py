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

from workflow.cli.common import project_root
from workflow.local.engine import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from workflow.local.template import Stack


def attach(
    state_machine_arn: str | None = None,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    stack_name: str = "vidflow",
) -> Any:
    """A ``stepfunctions.workflow.Workflow`` for vidflow's VOD state machine.

    Without an ARN, the state machine is found by the name the template gives it for
    ``stack_name`` (its ``VodStateMachineArn`` output, as the local engine creates it)
    among those the account (or the local stack) has.
    """
    # The SDK needs sagemaker<3; its deprecation banner is known, and noise in a notebook.
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from stepfunctions.workflow import Workflow

    if endpoint_url is not None and profile is None:
        # A local stack takes any keys, and a laptop may have none: bring the CLI's own.
        session = boto3.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            region_name=region or "us-east-1",
        )
    else:
        session = boto3.Session(profile_name=profile, region_name=region or "us-east-1")
    client = session.client("stepfunctions", endpoint_url=endpoint_url)
    if state_machine_arn is None:
        wanted = vod_state_machine_name(stack_name)
        pages = client.get_paginator("list_state_machines").paginate()
        matches = [m for page in pages for m in page["stateMachines"] if m["name"] == wanted]
        if not matches:
            raise LookupError(f"no state machine named {wanted}")
        state_machine_arn = matches[0]["stateMachineArn"]
    return Workflow.attach(state_machine_arn, client=client)


def vod_state_machine_name(stack_name: str) -> str:
    """The VOD state machine's name in the stack ``stack_name``, from the template."""
    stack = Stack(project_root(), name=stack_name)
    return stack.outputs()["VodStateMachineArn"].rsplit(":", 1)[-1]
