"""Everything a person could read on a stack after its jobs ran: where a test looks for
what must never be there (a presigned URL, a credential, a content key)."""

from __future__ import annotations

import json
from typing import Any


def readable_texts(engine: Any, suffixes: tuple[str, ...] | None = None) -> dict[str, str]:
    """The functions' log, every VOD execution's history and every object of the output
    bucket (those whose keys end in ``suffixes``, if given; bytes as latin-1), by name."""
    texts = {"functions.log": engine.log_file.read_text()}
    sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
    machine = engine.endpoints.state_machine_arn
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for execution in page["executions"]:
            history = sfn.get_execution_history(executionArn=execution["executionArn"])
            texts[execution["name"]] = json.dumps(history["events"], default=str)
    bucket = engine.endpoints.output_bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if suffixes is None or item["Key"].endswith(suffixes):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                texts[item["Key"]] = body.decode("latin-1")
    return texts
