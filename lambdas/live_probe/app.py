"""LiveProbe: read one live segment as untrusted input; fix the stream's settings."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import SEQUENCE, STREAM, source_in, takes
from workflow.live import probe
from workflow.metrics import metrics
from workflow.runtime import Clients, time_left
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer

logger = Logger()
settings = Settings.from_env()
# KMS: an encrypted stream's key (made by LiveProbe, unwrapped by LiveTranscode).
clients = Clients(
    s3=boto3.client("s3", config=S3_CONFIG),
    dynamodb=boto3.client("dynamodb"),
    kms=boto3.client("kms"),
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes(stream=STREAM, sequence=SEQUENCE, source=source_in(settings.ingest_bucket))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, stream=event["stream"], sequence=event["sequence"])
    return probe.probe_segment(event, settings, clients, time_left(context))
