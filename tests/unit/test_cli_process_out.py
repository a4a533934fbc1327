"""``vidflow process --out``: a previous asset there is replaced whole, so a folder that
holds anything else beside the asset is refused before a stack starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflow.cli import run

MANIFEST = {
    "schema": "vidflow.manifest/2",
    "master": "master.m3u8",
    "dash": None,
    "renditions": [{"name": "360p", "playlist": "360p/index.m3u8"}],
    "audio": {"playlist": "audio/index.m3u8"},
    "images": {"poster": "images/poster.jpg"},
}


def _asset(folder: Path) -> Path:
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    (folder / "master.m3u8").write_text("#EXTM3U\n")
    for name in ("360p", "audio", "images"):
        (folder / name).mkdir()
        (folder / name / "index.m3u8").write_text("#EXTM3U\n")
    return folder


def test_a_previous_asset_alone_is_taken_to_be_replaced(tmp_path: Path) -> None:
    source = tmp_path / "game.mp4"
    source.write_bytes(b"video")
    assert run._out_problem(_asset(tmp_path / "out"), source) is None


def test_a_file_of_the_user_beside_a_previous_asset_is_refused_by_name(tmp_path: Path) -> None:
    # GIVEN a previous asset with the user's own page and notes put beside it
    source = tmp_path / "game.mp4"
    source.write_bytes(b"video")
    out = _asset(tmp_path / "out")
    (out / "player.html").write_text("<video>")
    (out / "notes").mkdir()
    # WHEN the asset is made again into it / THEN it is refused, naming what would go
    # with the old asset (it is replaced whole), and nothing is removed
    assert run._out_problem(out, source) == (
        f"--out {out} holds notes, player.html, which the vidflow asset there does not "
        "name, and is replaced whole; move them, or give another folder"
    )
    assert (out / "player.html").read_text() == "<video>"


def test_a_previous_asset_in_a_folder_that_cannot_be_replaced_is_refused_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a previous asset in a folder this user may not write (as root, any folder
    # may be: the folder's answer is stood in for)
    source = tmp_path / "game.mp4"
    source.write_bytes(b"video")
    out = _asset(tmp_path / "out")
    monkeypatch.setattr(run.os, "access", lambda path, mode: Path(path) != out)
    # WHEN the asset is made again into it / THEN it is refused before the job runs,
    # rather than fail the swap after it (the new asset lost with the refusal)
    assert run._out_problem(out, source) == (
        f"--out {out} is not writable, and is replaced whole; give another folder"
    )
