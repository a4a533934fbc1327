"""LiveProbe: read one live segment as untrusted input; fix the stream's settings."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow import probe_steps, steps
from workflow.config import Settings

logger = Logger()
settings = Settings.from_env()
clients = steps.Clients(s3=boto3.client("s3"), dynamodb=boto3.client("dynamodb"))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.thread_safe_append_keys(stream=event["stream"], sequence=event["sequence"])
    return probe_steps.probe_segment(event, settings, clients, steps.time_left(context))
