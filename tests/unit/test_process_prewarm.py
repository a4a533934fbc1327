"""``vidflow process`` starts ahead of the job the execution environments the job calls."""

from __future__ import annotations

import re
from pathlib import Path

from workflow.cli.run import vod_functions
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]
# Called for some uploads only: subtitles with a sidecar or a text track, the failure
# record when a job fails.
SOMETIMES = {"SubtitlesFunction", "RecordFailureFunction"}


def test_every_function_each_vod_job_calls_is_started_ahead_in_call_order() -> None:
    stack = Stack(ROOT, overrides={"MapMaxConcurrency": "3"})
    names = vod_functions(stack)
    definition = (ROOT / "statemachine" / "vod.asl.json").read_text()
    called = set(re.findall(r"\$\{(\w+Function)Arn\}", definition))
    # The upload's trigger first, then every task of the workflow but the occasional ones
    triggered = [f.logical_id for f in stack.functions() if f.triggers]
    assert names[0] == "StartJobFunction" and "StartJobFunction" in triggered
    assert called - set(names) == SOMETIMES
    assert set(names) - called == {"StartJobFunction"}
    assert (
        names.index("ProbeFunction")
        < names.index("PlanFunction")
        < names.index("TranscodeChunkFunction")
    )
    assert names[-1] == "PublishFunction"
    # as many transcode environments as the Map runs at once
    assert names.count("TranscodeChunkFunction") == 3


def test_no_images_environment_where_the_stack_makes_no_images() -> None:
    stack = Stack(ROOT, overrides={"MapMaxConcurrency": "1", "ThumbnailSeconds": "0"})
    names = vod_functions(stack)
    assert "ImagesFunction" not in names
    assert names.count("TranscodeChunkFunction") == 1
