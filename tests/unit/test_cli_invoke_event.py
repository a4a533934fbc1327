"""``vidflow invoke``'s event file: one that is no JSON object, or names no object for
``--upload`` to put a file at, is a usage error before any function runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.cli import invoke
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main


@pytest.mark.parametrize(("text", "kind"), [("[]", "an array"), ('"probe"', "a string"),
                                            ("7", "a number"), ("null", "null"),
                                            ("true", "a boolean")])  # fmt: skip
def test_an_event_that_is_no_json_object_is_refused_by_name(
    text: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an event file holding JSON that is not an object
    event = tmp_path / "event.json"
    event.write_text(text)
    # WHEN it is invoked (at a port where no stack runs: it is refused before that look)
    status = main(
        ["invoke", "probe", "--event", str(event), "--endpoint-url", "http://127.0.0.1:9"]
    )
    # THEN it is a usage error that says what an event is, not the handler's TypeError
    assert status == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"error: {event} holds {kind}; an event is a JSON object (the samples in "
        "events/ show each function's)"
    )


@pytest.mark.parametrize(("name", "what"), [("missing.mp4", "no such file"), (".", "a folder")])
def test_an_upload_that_is_no_file_is_refused_by_name(
    name: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sample event and an --upload that names no file (a typo, the wrong folder)
    event = tmp_path / "event.json"
    event.write_text('{"job_id": "game-0123456789abcdef", "source": {"key": "uploads/g.mp4"}}')
    upload = tmp_path / name
    # WHEN it is invoked (at a port where no stack runs: it is refused before that look)
    status = main(["invoke", "probe", "--event", str(event), "--upload", str(upload),
                   "--endpoint-url", "http://127.0.0.1:9"])  # fmt: skip
    # THEN it is a usage error that names the file, not an internal FileNotFoundError
    assert status == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"error: --upload {upload}: {what}; give a file to upload"
    )


class _Stack:
    """A stack whose ingest bucket is all ``--upload`` asks of it before uploading."""

    def outputs(self) -> dict[str, str]:
        return {"IngestBucketName": "ingest"}


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [{}]},
        {"Records": [{"s3": {}}]},
        {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]},
        {"Records": "uploads/game.mp4"},
        {"source": {"bucket": "b"}},
        {"source": {"key": 5}},
        {"source": {"key": ""}},  # (S3 refused it: ParamValidationError, an internal error)
        {"source": {"key": "k" * 1025}},
        {"job_id": "game-0123456789abcdef"},
    ],
)
def test_upload_into_an_event_that_names_no_object_is_refused_by_name(event: object) -> None:
    # GIVEN a hand-made event with no usable source key or S3 record / WHEN --upload is
    # given a video for it / THEN it names no place (a usage error), never the KeyError
    # or TypeError of reading it, and nothing is uploaded (no S3 client is given)
    assert invoke._with_upload(event, Path("game.mp4"), _Stack(), s3=None) is None
    assert invoke._places(event) == "no source, no S3 record"


def test_upload_of_subtitles_into_an_event_whose_sidecar_has_no_key_is_refused() -> None:
    event = {"item": {"sidecar": {"key": 5, "format": "srt"}}}
    assert invoke._with_upload(event, Path("game.en.srt"), _Stack(), s3=None) is None
