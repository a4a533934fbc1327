"""``vidflow process``'s input: one no S3 key can name is refused before a stack starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflow.cli import run
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main


def test_a_file_whose_name_is_not_utf8_is_refused_before_any_stack_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video whose name holds a byte that is no UTF-8 (an S3 key is UTF-8)
    source = tmp_path / os.fsdecode(b"game\xff.mp4")
    source.write_bytes(b"\x00\x00\x00\x18ftypisom")

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started for a file it cannot take")

    monkeypatch.setattr(run, "start_engine", no_stack)
    # WHEN it is processed / THEN it is a usage error that says why, and no stack starts
    assert main(["process", str(source), "--out", str(tmp_path / "out")]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert said.startswith(f"error: {tmp_path}/game\\udcff.mp4 has a name that is not UTF-8")


def test_a_file_whose_name_holds_a_line_break_is_refused_before_any_stack_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a video whose name holds a line break (the local S3 answers its key 404, so
    # the upload would fail as "Not Found", a cause that is not the file's)
    source = tmp_path / "game\nfinal.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypisom")

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started for a file it cannot take")

    monkeypatch.setattr(run, "start_engine", no_stack)
    # WHEN it is processed / THEN it is a usage error on one line that says why
    assert main(["process", str(source), "--out", str(tmp_path / "out")]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert (
        said == f"error: {tmp_path}/game\\nfinal.mp4 has a line break in its name, "
        "which the local S3 cannot take in a key: rename it\n"
    )
