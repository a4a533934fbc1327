"""Clip: publish a span of a live stream as a VOD asset (or record why it could not be)."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import CLIP, OBJECT, STREAM, maybe, source_in, takes
from workflow.live import clip
from workflow.runtime import Clients, time_left
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
@logger.inject_lambda_context
@takes(stream=STREAM, name=CLIP, request=source_in(settings.ingest_bucket), error=maybe(OBJECT))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, stream=event["stream"], clip=event["name"])
    return clip.make_clip(event, settings, clients, time_left(context))
