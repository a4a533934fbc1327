"""Publish: verify every work item, then write playlists, manifest and master last."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from workflow.event_shape import JOB_ID, source_in, takes
from workflow.metrics import metrics
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import S3_CONFIG
from workflow.tracing import identify, tracer
from workflow.vod import publish

logger = Logger()
settings = Settings.from_env()
# A connection for each thread that reads result records.
clients = Clients(
    s3=boto3.client(
        "s3", config=S3_CONFIG.merge(Config(max_pool_connections=publish.READ_THREADS))
    ),
    events=boto3.client("events"),
)


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context
@takes(job_id=JOB_ID, source=source_in(settings.ingest_bucket))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    identify(logger, job_id=event["job_id"])
    return publish.publish(event, settings, clients)
