"""Images: poster, thumbnails and trick-play sprites from the source's keyframes, one
piece (a sprite sheet's span of the video) per work item."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from workflow.media import images, picture, runner
from workflow.runtime import Deadline, scratch_dir
from workflow.vod.items import Work, source_input, work_item
from workflow.vod.records import ImagesResult

THUMBNAIL_WIDTH = 320
# The folder of the asset the images go to.
IMAGES = "images"


@work_item
def make_images(work: Work, remaining: Deadline) -> dict[str, Any]:
    """One piece's thumbnails and sprite sheets, from the source's keyframes; the first
    piece's also the poster and the VTT map of them all."""
    plan = work.plan
    facts, top = plan.facts, plan.renditions[0]
    interval = plan.thumbnail_seconds
    count = images.thumbnail_count(facts.duration, interval)
    piece = work.item.images
    first, ticks = (0, count) if piece is None else (piece.first, piece.ticks)
    began = time.monotonic()
    with scratch_dir() as workdir:
        options: dict[str, Any] = dict(
            interval=interval,
            thumb_width=min(THUMBNAIL_WIDTH, top.width - top.width % 2),
            # Keyframes only: far less than a rung's encode of the same length. Every piece
            # gets the limit of one run of every tick: a later one may have to read from
            # the video's start (an intra-refresh source), and a first one that finds only
            # black or blank frames reads every tick's for the poster.
            timeout=runner.time_limit(remaining(), count * interval / 4),
            ticks=ticks,
            binary=runner.ffmpeg_binary(),
            # Images come from keyframes alone, which a deinterlacer cannot pair.
            source_filters=picture.source_filters(facts, deinterlace=False),
        )
        with source_input(work.source, work.clients) as (url, headers):
            source = (url, facts.container, facts.start_time, facts.duration, workdir)
            if first:
                made: images.Thumbnails = images.make_thumbnails(
                    *source, first=first, headers=headers, **options
                )
            else:
                made = images.make_images(
                    *source, poster_size=(top.width, top.height), headers=headers, **options
                )

        def published(path: Path) -> str:
            return f"{IMAGES}/{path.relative_to(workdir)}"

        files = [*made.thumbnails, *made.sprites]
        poster = poster_time = None
        thumbnails: dict[str, Any] = {"count": len(made.thumbnails)}
        sprites: dict[str, Any] = {"count": len(made.sprites)}
        if isinstance(made, images.Images):
            # The first piece speaks for all of them.
            files += [made.poster, made.vtt]
            poster, poster_time = published(made.poster), made.poster_time
            thumbnails = {
                "count": count,
                "interval": made.interval,
                "width": made.thumb_width,
                "height": made.thumb_height,
                "first": published(made.thumbnails[0]),
            }
            sprites = {
                "count": math.ceil(count / (made.columns * made.rows)),
                "columns": made.columns,
                "rows": made.rows,
                "vtt": published(made.vtt),
            }
        work.output.upload_all({f"{work.paths.output_prefix}{published(p)}": p for p in files})
        result = ImagesResult(
            item=work.item.name,
            poster=poster,
            poster_time=poster_time,
            thumbnails=thumbnails,
            sprites=sprites,
            wall_seconds=round(time.monotonic() - began, 3),
            finished_at=work.clients.utc_now(),
        )
    work.output.put_json(work.paths.result_key(result.item), result.to_dict())
    return {"item": result.item, "seconds": result.wall_seconds}
