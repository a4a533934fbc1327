"""X-Ray traces through Powertools' ``Tracer``: one for the process, created once.

Each handler is wrapped in ``tracer.capture_lambda_handler`` (its cold start and errors);
botocore is patched, so every AWS call is a subsegment of its own. The steps add what
only they know: ``job_id`` or ``stream`` as annotations (searchable in X-Ray), and a
subsegment around each ffmpeg run and each multi-object S3 transfer.

Outside Lambda (tests, the CLI) the tracer is off, as Powertools decides; the local engine
runs it as Lambda does and collects the segments (``workflow.local.xray``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Tracer

tracer = Tracer()


def annotate(**values: Any) -> None:
    """Annotations on the invocation's trace (X-Ray indexes them for searches)."""
    for key, value in values.items():
        tracer.put_annotation(key=key, value=value)


@contextmanager
def subsegment(name: str, **metadata: Any) -> Iterator[None]:
    """Time ``name`` as a subsegment of the invocation's trace, with ``metadata``."""
    with tracer.provider.in_subsegment(f"## {name}") as segment:
        for key, value in metadata.items():
            segment.put_metadata(key, value, "vidflow")
        yield


def identify(logger: Any, **keys: str | int) -> None:
    """The invocation's subject (job, stream, segment) on every log line and on its trace."""
    logger.thread_safe_append_keys(**keys)
    annotate(**keys)
