"""Bounds are enforced before decoding: small files that declare huge work are refused."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("name", "expected", "phrase"),
    [
        ("bomb_4096", "InputTooLargeError", "4096x4096"),
        ("ten_hours", "InputTooLongError", "the limit is 14400 s"),
    ],
)
def test_small_files_declaring_huge_work_are_refused(
    name: str, expected: str, phrase: str, clip: Any, run_job: Any
) -> None:
    # GIVEN a file of a few KB that declares a huge frame or a nine-hour running time
    source = clip(name)
    assert source.stat().st_size < 200_000
    # WHEN it is uploaded
    run = run_job(source)
    # THEN it is refused by name, with the bound in the cause, and nothing is published
    assert run.status == "FAILED"
    assert run.error == expected
    assert phrase in run.cause
    assert run.output_keys == []


def test_tighter_bounds_come_from_the_template(clip: Any, tmp_path: Any) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli.main", "process", str(clip("half_second")),
         "--out", str(tmp_path / "out"), "--parameter", "MaxInputPixels=1000"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: InputTooLargeError: the video is 320x240; the limit is 1000 pixels"
    )
