"""``vidflow invoke``'s event file: one that is no JSON object is a usage error before any
stack is looked for or function run."""

from __future__ import annotations

from pathlib import Path

import pytest

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
