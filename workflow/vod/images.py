"""Images: poster, thumbnails and trick-play sprites from the source's keyframes."""

from __future__ import annotations

import time
from typing import Any

from workflow.media import images, runner
from workflow.runtime import Clients, Deadline, scratch_dir
from workflow.settings import Settings
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.items import ItemEvent, load_plan, records_item_errors, source_input
from workflow.vod.records import ImagesResult

THUMBNAIL_WIDTH = 320
# The folder of the asset the images go to.
IMAGES = "images"


@records_item_errors
@transient_aws_errors()
def make_images(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Poster, thumbnails and trick-play sprites, from the source's keyframes."""
    job = ItemEvent.from_dict(event)
    output = Bucket(clients.s3, settings.output_bucket)
    plan = load_plan(output, job.paths)
    facts, top = plan.facts, plan.renditions[0]
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(job.source, clients) as (url, headers):
            made = images.make_images(
                url,
                facts.container,
                facts.start_time,
                facts.duration,
                workdir,
                interval=plan.thumbnail_seconds,
                thumb_width=min(THUMBNAIL_WIDTH, top.width - top.width % 2),
                poster_size=(top.width, top.height),
                # Keyframes only: far less than a rung's encode of the same length.
                timeout=runner.time_limit(remaining(), facts.duration / 4),
                binary=runner.ffmpeg_binary(),
                headers=headers,
            )

        def published(path: Any) -> str:
            return f"{IMAGES}/{path.relative_to(workdir)}"

        files = [made.poster, made.vtt, *made.thumbnails, *made.sprites]
        output.upload_all({f"{job.paths.output_prefix}{published(p)}": p for p in files})
        result = ImagesResult(
            item=job.item.name,
            poster=published(made.poster),
            poster_time=made.poster_time,
            thumbnails={
                "count": len(made.thumbnails),
                "interval": made.interval,
                "width": made.thumb_width,
                "height": made.thumb_height,
                "first": published(made.thumbnails[0]),
            },
            sprites={
                "count": len(made.sprites),
                "columns": made.columns,
                "rows": made.rows,
                "vtt": published(made.vtt),
            },
            wall_seconds=round(time.monotonic() - began, 3),
            finished_at=clients.utc_now(),
        )
    output.put_json(job.paths.result_key(result.item), result.to_dict())
    return {"item": result.item, "seconds": result.wall_seconds}
