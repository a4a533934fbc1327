"""Reconcile: on a schedule, start the job of any upload whose S3 event started none."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow import reconcile
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
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    found = reconcile.reconcile(settings, clients, invocation=context.aws_request_id)
    logger.info("uploads reconciled", extra=found)
    return found
