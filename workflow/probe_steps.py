"""The two steps that read media with PyAV: the VOD Probe and the live LiveProbe.

They live apart from the other steps because PyAV ships only in the PyAV layer, which only
these two functions have: no other function's import closure may reach this module.
"""

from __future__ import annotations

import time
from typing import Any

from workflow.config import Settings
from workflow.jobs import JobPaths
from workflow.livesteps import HEAD_BYTES, declared_config, segment_input, stream_config
from workflow.livestore import StreamTable
from workflow.probe import probe
from workflow.steps import Clients, Remaining, scratch_dir, source_input, upload_packaging
from workflow.storage import Bucket, Pin, transient_aws_errors


@transient_aws_errors()
def probe_source(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Probe the upload as untrusted input and store its facts and frame index."""
    began = time.monotonic()
    source = event["source"]
    paths = JobPaths(event["job_id"])
    ingest = Bucket(clients.s3, source["bucket"])
    pin = Pin.of(source)
    described = ingest.head(source["key"], pin)
    size = int(described["ContentLength"])
    packaging = upload_packaging(described.get("Metadata", {}), settings.packaging)
    head = ingest.read_range(source["key"], size, HEAD_BYTES, pin)
    # A file replaced mid-probe would read as damaged: the pin's check says what happened.
    with source_input(source, clients) as (url, headers):
        result = probe(
            url,
            head=head,
            size=size,
            limits=settings.limits,
            timeout=max(5.0, min(60.0, remaining() - 10)),
            headers=headers,
        )
    elapsed = round(time.monotonic() - began, 3)
    Bucket(clients.s3, settings.output_bucket).put_json(
        paths.probe_key,
        {
            "facts": result.facts.to_dict(),
            "index": result.index.to_dict(),
            "packaging": packaging,
            "elapsed": elapsed,
        },
    )
    facts = result.facts
    return {
        "probe_key": paths.probe_key,
        "duration": facts.duration,
        "width": facts.display_width,
        "height": facts.display_height,
        "has_audio": facts.audio is not None,
    }


@transient_aws_errors()
def probe_segment(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Probe one segment as untrusted input; say so if it was published already.

    The stream's first probed segment fixes its settings (``stream.json`` and the
    ladder for its picture size), so every later segment is encoded the same way.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    table = StreamTable(clients.dynamodb, settings.live_table)
    if table.has_arrival(stream, sequence):
        return {**event, "duplicate": True}
    with scratch_dir() as workdir:
        source, head, size = segment_input(event["source"], clients, workdir)
        facts = probe(
            source,
            head=head,
            size=size,
            limits=settings.limits,
            timeout=max(5.0, min(30.0, remaining() - 5)),
        ).facts
    record = table.get(stream)
    if record is None or record.config is None:
        config = stream_config(
            declared_config(event["source"]["bucket"], stream, clients),
            facts.display_width,
            facts.display_height,
            facts.frame_rate,
            facts.audio is not None,
            settings,
        )
        table.configure(stream, config)
    return {
        **event,
        "duplicate": False,
        "segment": {
            "container": facts.container,
            "container_start": facts.container_start,
            "start": facts.start_time,
            "end": round(facts.start_time + facts.duration, 6),
            "frames": facts.frame_count,
            "has_audio": facts.audio is not None,
        },
    }
