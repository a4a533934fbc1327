"""LiveIngest: a live segment upload starts its execution; an END marker closes the stream."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import S3_RECORDS, takes
from workflow.live import ingest
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import tracer

logger = Logger()
settings = Settings.from_env()
clients = Clients(
    s3=boto3.client("s3", config=S3_CONFIG),
    sfn=boto3.client("stepfunctions"),
    dynamodb=boto3.client("dynamodb"),
    events=boto3.client("events"),
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes(Records=S3_RECORDS)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    seen = ingest.on_ingest(event["Records"], settings, clients)
    logger.info("live uploads seen", extra={"uploads": seen})
    return {"uploads": seen}
