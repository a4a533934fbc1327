"""KeyService: an asset's content key for a valid playback token (a function URL)."""

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow.keys.service import PlaybackSecret, answer, last_admitted
from workflow.keys.store import KeyStore
from workflow.live.store import StreamTable
from workflow.settings import Settings
from workflow.tracing import tracer

# The request's headers and query carry the token: never log the event.
logger = Logger()
settings = Settings.from_env()
dynamodb = boto3.client("dynamodb")
store = KeyStore(settings.keys_table, settings.content_key_kms_key, dynamodb, boto3.client("kms"))
# How far each live stream has got: a rotating stream's period key only once it has begun.
admitted = last_admitted(StreamTable(dynamodb, settings.live_table))
secret = PlaybackSecret(boto3.client("secretsmanager"), settings.playback_secret)


# The response is the key: never captured into a trace.
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer(event, store, secret, time.time(), admitted)
