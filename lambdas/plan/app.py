"""Plan: choose the ladder and the chunks (by time, on listed keyframes), written to S3;
and, for a per-title ladder, once its spans are analysed, each rung's bitrate."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import JOB_ID, source_in, takes
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer
from workflow.vod import plan

logger = Logger()
settings = Settings.from_env()
# DynamoDB and KMS: protected jobs' content keys (made by Plan, unwrapped by the encoders).
clients = Clients(
    s3=boto3.client("s3", config=S3_CONFIG),
    dynamodb=boto3.client("dynamodb"),
    kms=boto3.client("kms"),
)


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context
@takes(job_id=JOB_ID, source=source_in(settings.ingest_bucket))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, job_id=event["job_id"])
    return plan.plan_step(event, settings, clients)
