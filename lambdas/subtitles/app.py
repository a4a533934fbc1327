"""Subtitles: one sidecar subtitle file as WebVTT, timed to the video."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.event_shape import ITEM, JOB_ID, source_in, takes
from workflow.runtime import Clients, time_left
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer
from workflow.vod import subtitles

logger = Logger()
settings = Settings.from_env()
clients = Clients(s3=boto3.client("s3", config=S3_CONFIG))


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context
@takes(job_id=JOB_ID, source=source_in(settings.ingest_bucket), item=ITEM)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, job_id=event["job_id"])
    return subtitles.make_subtitles(event, settings, clients, time_left(context))
