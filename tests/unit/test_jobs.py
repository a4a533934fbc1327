"""Job ids: one per object version, always a valid Step Functions execution name."""

from __future__ import annotations

import re

import pytest

from workflow.cli.sign import _JOB_ID
from workflow.vod.jobs import JobPaths, job_id

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def test_the_same_object_version_gives_the_same_id() -> None:
    # GIVEN one bucket, key and ETag
    # WHEN the id is computed twice
    # THEN it is the same, so a duplicate S3 event meets ExecutionAlreadyExists
    assert job_id("ingest", "uploads/a.mp4", "abc") == job_id("ingest", "uploads/a.mp4", "abc")


@pytest.mark.parametrize(
    ("other_bucket", "other_key", "other_etag"),
    [
        pytest.param("ingest", "uploads/a.mp4", "abd", id="new-content"),
        pytest.param("ingest-2", "uploads/a.mp4", "abc", id="other-bucket"),
        pytest.param("ingest", "uploads/b/a.mp4", "abc", id="same-name-other-folder"),
        pytest.param("ingest", "uploads/a.MP4", "abc", id="other-case"),
    ],
)
def test_a_different_object_version_gives_a_different_id(
    other_bucket: str, other_key: str, other_etag: str
) -> None:
    # GIVEN an object and another that differs in one part
    # WHEN / THEN their ids differ
    assert job_id("ingest", "uploads/a.mp4", "abc") != job_id(other_bucket, other_key, other_etag)


def test_quotes_around_the_etag_are_ignored() -> None:
    # GIVEN the ETag as S3 events send it (bare) and as HeadObject returns it (quoted)
    # WHEN / THEN both give the same id
    assert job_id("b", "uploads/a.mp4", '"9e107d9d"') == job_id("b", "uploads/a.mp4", "9e107d9d")


@pytest.mark.parametrize(
    "key",
    [
        "uploads/holiday clip.mp4",
        "uploads/caf\u00e9 \u00e0 Paris.mov",
        "uploads/\u89c6\u9891.mp4",
        "uploads/../../etc/passwd",
        "uploads/..",
        "///uploads//a.mp4",
        "/leading.mp4",
        "uploads/$(rm -rf ~);`id`|&>x<y'\"*?.mkv",
        "uploads/" + "x" * 500 + ".mp4",
        "uploads/.mp4",
        "uploads/",
        "",
        "uploads/a\nb\tc.mp4",
        "uploads/-clip.mp4",
        "uploads/_-_.mp4",
    ],
)
def test_the_id_is_a_valid_execution_name_for_any_key(key: str) -> None:
    # GIVEN an object key a user could upload (or an attacker could craft)
    # WHEN its id is computed
    result = job_id("ingest", key, '"d41d8cd98f00b204e9800998ecf8427e"')

    # THEN it is 1-80 characters of letters, digits, '_' and '-' only
    assert NAME.fullmatch(result), result
    # AND it begins with a letter or digit, as a key service path's asset must (a
    # protected asset named otherwise could never be played), and vidflow sign takes it
    assert result[0].isascii() and result[0].isalnum(), result
    assert _JOB_ID.fullmatch(result), result


def test_the_id_is_recognisable_from_the_file_name() -> None:
    # GIVEN a key with a readable stem
    # WHEN its id is computed
    result = job_id("ingest", "uploads/holiday clip.mp4", "abc")

    # THEN the id starts with that stem, made safe
    assert result.startswith("holiday_clip-")


def test_job_paths_keep_outputs_scratch_and_failures_apart() -> None:
    # GIVEN a job
    paths = JobPaths("clip-0123456789abcdef")

    # WHEN / THEN its published output, scratch and failure record live under separate prefixes
    assert paths.master_key == "outputs/clip-0123456789abcdef/master.m3u8"
    assert paths.manifest_key.startswith(paths.output_prefix)
    assert paths.plan_key.startswith(paths.scratch_prefix)
    assert paths.result_key("video-00001").startswith(paths.results_prefix)
    assert paths.progress_key("video-00001").startswith(paths.progress_prefix)
    assert not paths.progress_prefix.startswith(paths.results_prefix)
    assert paths.failure_key == "failures/clip-0123456789abcdef.json"
    assert not paths.scratch_prefix.startswith(paths.output_prefix)
