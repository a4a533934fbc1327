"""An asynchronous invocation that the engine itself fails to make is said, not swallowed."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from workflow.local.engine import LocalEngine


def _engine(invoke_async: Any) -> Any:
    return SimpleNamespace(
        _stopping=threading.Event(),
        _events=ThreadPoolExecutor(max_workers=1),
        invoke_async=invoke_async,
    )


def test_an_event_the_engine_fails_to_deliver_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN an engine whose delivery breaks inside the engine (its queue is unreachable)
    def broken(*_: Any) -> None:
        raise ConnectionError("the on-failure queue is unreachable")

    engine = _engine(broken)
    # WHEN an S3 event is handed to it
    with caplog.at_level(logging.ERROR, logger="vidflow.engine"):
        LocalEngine.deliver(engine, "arn:aws:lambda:eu-west-1:1:function:f", {"Records": []})
        engine._events.shutdown(wait=True)
    # THEN the loss is said, with its cause
    assert "lost by the engine" in caplog.text and "on-failure queue" in caplog.text


def test_a_delivered_event_says_nothing_and_a_stopping_engine_takes_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[Any, ...]] = []
    engine = _engine(lambda *args: calls.append(args))
    with caplog.at_level(logging.ERROR, logger="vidflow.engine"):
        LocalEngine.deliver(engine, "f", {"n": 1})
        engine._stopping.set()
        LocalEngine.deliver(engine, "f", {"n": 2})
        engine._events.shutdown(wait=True)
    assert calls == [("f", {"n": 1}, 1)]
    assert caplog.text == ""
