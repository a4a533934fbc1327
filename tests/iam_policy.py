"""A boto3 client held to one function's template policy, as IAM would hold it on AWS.

moto grants every call, so a step that calls what its role lacks passes every local test
and fails on AWS with ``AccessDenied``. ``enforce`` makes the client refuse such a call the
way S3/DynamoDB would (a ``ClientError`` with code ``AccessDenied``), for the S3 and
DynamoDB calls the steps make.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions

from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[1]


def statements(function: str, stack: Stack | None = None) -> list[dict[str, Any]]:
    """The resolved statements of ``function``'s inline policies (SAM's templates aside)."""
    stack = stack or Stack(ROOT)
    found = []
    for policy in stack.resources[function]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []):
            statement = stack.resolve(statement)
            actions, resources = statement["Action"], statement["Resource"]
            found.append({
                "Action": actions if isinstance(actions, list) else [actions],
                "Resource": resources if isinstance(resources, list) else [resources],
                "Condition": statement.get("Condition") or {},
            })  # fmt: skip
    return found


def allowed(found: list[dict[str, Any]], action: str, resource: str, prefix: str | None) -> bool:
    for statement in found:
        if not any(fnmatch.fnmatchcase(action, a) for a in statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in statement["Resource"]):
            continue
        prefixes = statement["Condition"].get("StringLike", {}).get("s3:prefix")
        if prefixes is not None and not any(fnmatch.fnmatchcase(prefix or "", p) for p in prefixes):
            continue
        return True
    return False


def _s3_needs(
    operation: str, params: dict[str, Any], bucket: str
) -> list[tuple[str, str, str | None]]:
    obj = f"arn:aws:s3:::{bucket}/{params.get('Key')}"
    version = "Version" if params.get("VersionId") else ""
    if operation in ("GetObject", "HeadObject"):
        return [(f"s3:GetObject{version}", obj, None)]
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return [("s3:PutObject", obj, None)]
    if operation == "DeleteObject":
        return [("s3:DeleteObject", obj, None)]
    if operation == "DeleteObjects":
        return [
            ("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{o['Key']}", None)
            for o in params["Delete"]["Objects"]
        ]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [("s3:ListBucket", f"arn:aws:s3:::{bucket}", params.get("Prefix", ""))]
    if operation == "ListObjectVersions":
        return [("s3:ListBucketVersions", f"arn:aws:s3:::{bucket}", params.get("Prefix", ""))]
    if operation == "CopyObject":
        source = params["CopySource"]
        return [
            ("s3:PutObject", obj, None),
            ("s3:GetObject", f"arn:aws:s3:::{bucket}/{source['Key']}", None),
        ]
    return [(f"s3:{operation}", f"arn:aws:s3:::{bucket}", None)]


def enforce(client: Any, function: str, names: Mapping[str, str]) -> None:
    """Hold ``client`` to ``function``'s policy; ``names`` maps the test's bucket and table
    names to the template's logical ids (``{"out": "OutputBucket"}``)."""
    stack = Stack(ROOT)
    found = statements(function, stack)
    real = {name: stack.ref(lid) for name, lid in names.items()}
    service = client.meta.service_model.service_name

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        if service == "s3":
            bucket = str(params.get("Bucket"))
            needs = _s3_needs(model.name, params, real.get(bucket, bucket))
        elif service == "dynamodb":
            table = real.get(str(params.get("TableName")), params.get("TableName"))
            arn = f"arn:aws:dynamodb:{stack.region}:{stack.account}:table/{table}"
            if params.get("IndexName"):
                arn += f"/index/{params['IndexName']}"
            needs = [(f"dynamodb:{model.name}", arn, None)]
        else:
            return
        for action, resource, prefix in needs:
            if not allowed(found, action, resource, prefix):
                message = f"{function}'s role may not {action} on {resource}"
                error: Any = {"Error": {"Code": "AccessDenied", "Message": message}}
                raise botocore.exceptions.ClientError(error, model.name)

    client.meta.events.register(f"before-parameter-build.{service}.*", check)
