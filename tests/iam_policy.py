"""A boto3 client held to one function's template policy, as IAM would hold it on AWS.

moto grants every call, so a step that calls what its role lacks passes every in-process
test and fails on AWS with ``AccessDenied``. The local engine holds each function's
process to its role (``workflow.local.bootstrap.hold_to_role``); ``enforce`` does the same
for one client of a unit test, whose bucket and table names differ from the stack's,
with S3's 403 for a read of a missing key where the role may not list the whole bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions

from workflow.local.bootstrap import allowed, missing_denied, needs
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[1]


def statements(function: str, stack: Stack | None = None) -> list[dict[str, Any]]:
    """``function``'s resolved Allow statements (``Stack.role_statements``)."""
    return (stack or Stack(ROOT)).role_statements(function)


def enforce(client: Any, function: str, names: Mapping[str, str]) -> None:
    """Hold ``client`` to ``function``'s policy; ``names`` maps the test's bucket and table
    names to the template's logical ids (``{"out": "OutputBucket"}``)."""
    stack = Stack(ROOT)
    found = statements(function, stack)
    real = {name: stack.ref(lid) for name, lid in names.items()}
    service = client.meta.service_model.service_name

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        named = dict(params)
        for field in ("Bucket", "TableName"):
            if field in named:
                named[field] = real.get(str(named[field]), named[field])
        if "TransactItems" in named:
            # (each item of a transaction names its own table)
            named["TransactItems"] = [
                {
                    kind: {**body, "TableName": real.get(body["TableName"], body["TableName"])}
                    for kind, body in item.items()
                }
                for item in named["TransactItems"]
            ]
        for action, resource, prefix in needs(
            service, model.name, named, stack.region, stack.account
        ):
            if not allowed(found, action, resource, prefix):
                message = f"{function}'s role may not {action} on {resource}"
                error: Any = {"Error": {"Code": "AccessDenied", "Message": message}}
                raise botocore.exceptions.ClientError(error, model.name)

    client.meta.events.register(f"before-parameter-build.{service}.*", check)

    if service != "s3":
        return
    call = client._make_api_call

    def missing_is_denied(operation: str, params: dict[str, Any]) -> Any:
        try:
            return call(operation, params)
        except botocore.exceptions.ClientError as exc:
            bucket = str(params.get("Bucket"))
            denied = missing_denied(found, operation, real.get(bucket, bucket), exc)
            if denied is not None:
                raise denied from None
            raise

    client._make_api_call = missing_is_denied
