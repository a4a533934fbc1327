"""StartJob: an S3 upload event starts one VOD execution per object."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import S3_RECORDS, takes
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.tracing import tracer
from workflow.vod import start

logger = Logger()
settings = Settings.from_env()
clients = Clients(s3=boto3.client("s3"), sfn=boto3.client("stepfunctions"))


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes(Records=S3_RECORDS)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    started = start.start_jobs(event["Records"], settings, clients, context.aws_request_id)
    logger.info("uploads seen", extra={"jobs": started})
    return {"jobs": started}
