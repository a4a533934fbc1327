"""LiveSweep: on a schedule, advance open streams past missing segments and END markers."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import takes
from workflow.live import sweep
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import tracer

logger = Logger()
settings = Settings.from_env()
clients = Clients(
    s3=boto3.client("s3", config=S3_CONFIG),
    dynamodb=boto3.client("dynamodb"),
    events=boto3.client("events"),
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A scheduled event says when it was due ("time"); an invocation by hand may not.
    swept = sweep.sweep(settings, clients, event.get("time"))
    logger.info("open streams advanced", extra=swept)
    return swept
