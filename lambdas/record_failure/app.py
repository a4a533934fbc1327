"""RecordFailure: write failures/<job>.json and remove partial output (and content key)."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import JOB_ID, OBJECT, maybe, takes
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer
from workflow.vod import failure

logger = Logger()
settings = Settings.from_env()
clients = Clients(
    s3=boto3.client("s3", config=S3_CONFIG),
    events=boto3.client("events"),
    dynamodb=boto3.client("dynamodb"),  # a failed protected job's content key is deleted
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes(job_id=JOB_ID, error=maybe(OBJECT), source=maybe(OBJECT))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, job_id=event["job_id"])
    return failure.record_failure(event, settings, clients)
