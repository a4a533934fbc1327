"""LivePublish: record a segment (or its failure) once and advance the stream's playlists."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import OBJECT, SEQUENCE, STREAM, maybe, takes
from workflow.live import publish
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer

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
@takes(
    stream=STREAM,
    sequence=SEQUENCE,
    error=maybe(OBJECT),
    source=maybe(OBJECT),
    segment=maybe(OBJECT),
    result=maybe(OBJECT),
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, stream=event["stream"], sequence=event["sequence"])
    return publish.publish_segment(event, settings, clients)
