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


def test_a_picture_that_grows_past_the_bound_mid_way_is_refused(tmp_path: Any) -> None:
    import subprocess
    import sys

    from workflow.local.binaries import ffmpeg_binary

    # GIVEN a TS of 320x240 (76,800 pixels) that an encoder restart turns 640x360
    # (230,400) after 4 s: the probe reads only the first picture
    source = tmp_path / "grows.ts"
    for size, offset in (("320x240", "0"), ("640x360", "4.04")):
        part = tmp_path / f"{size}.ts"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
             f"testsrc2=size={size}:rate=25:duration=4", "-c:v", "libx264", "-preset",
             "ultrafast", "-g", "25", "-output_ts_offset", offset, str(part)],
            check=True,
        )  # fmt: skip
        with source.open("ab") as joined:
            joined.write(part.read_bytes())
    # WHEN it is processed under a bound between the two sizes
    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli.main", "process", str(source),
         "--out", str(tmp_path / "out"), "--parameter", "MaxInputPixels=100000"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # THEN it is refused by name where the picture grows, and nothing is published
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: InputTooLargeError: video-00000: the video changes to 640x360 mid-way; the "
        "limit is 100000 pixels"
    )
    assert not (tmp_path / "out").exists()
