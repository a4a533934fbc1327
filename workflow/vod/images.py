"""Images: poster, thumbnails and trick-play sprites from the source's keyframes."""

from __future__ import annotations

import time
from typing import Any

from workflow.media import images, runner
from workflow.runtime import Deadline, scratch_dir
from workflow.vod.items import Work, source_input, work_item
from workflow.vod.records import ImagesResult

THUMBNAIL_WIDTH = 320
# The folder of the asset the images go to.
IMAGES = "images"


@work_item
def make_images(work: Work, remaining: Deadline) -> dict[str, Any]:
    """Poster, thumbnails and trick-play sprites, from the source's keyframes."""
    plan = work.plan
    facts, top = plan.facts, plan.renditions[0]
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(work.source, work.clients) as (url, headers):
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
        work.output.upload_all({f"{work.paths.output_prefix}{published(p)}": p for p in files})
        result = ImagesResult(
            item=work.item.name,
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
            finished_at=work.clients.utc_now(),
        )
    work.output.put_json(work.paths.result_key(result.item), result.to_dict())
    return {"item": result.item, "seconds": result.wall_seconds}
