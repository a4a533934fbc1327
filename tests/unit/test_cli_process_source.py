"""``vidflow process``'s input: one no S3 key can name is refused before a stack starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflow.cli import run
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main


@pytest.mark.parametrize(
    ("name", "said"),
    [
        # a byte that is no UTF-8 (an S3 key is UTF-8)
        (os.fsdecode(b"game\xff.mp4"), "game\\udcff.mp4 has a name that is not UTF-8"),
        # a line break: the local S3 answers its key 404, and the upload failed as
        # "Not Found", a cause that was not the file's
        (
            "game\nfinal.mp4",
            "game\\nfinal.mp4 has a line break in its name, which the local S3 cannot "
            "take in a key: rename it\n",
        ),
    ],
    ids=["not-utf8", "line-break"],
)
def test_a_file_no_key_can_name_is_refused_before_any_stack_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    said: str,
) -> None:
    # GIVEN a video whose name no key of the local stack can hold
    source = tmp_path / name
    source.write_bytes(b"\x00\x00\x00\x18ftypisom")

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started for a file it cannot take")

    monkeypatch.setattr(run, "start_engine", no_stack)
    # WHEN it is processed / THEN it is a usage error on one line that says why, and no
    # stack starts
    assert main(["process", str(source), "--out", str(tmp_path / "out")]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}/{said}")
