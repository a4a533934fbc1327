"""How the engine hands S3 events to functions: an asynchronous invocation that the
engine itself fails to make is said, not swallowed, and each upload is announced as S3
announces it."""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from workflow.local.engine import LocalEngine, _without_multipart_put


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
    assert calls == [("f", {"n": 1}, 1, None)]
    assert caplog.text == ""


def test_lambda_retries_a_failed_asynchronous_invocation_under_its_request_id() -> None:
    # GIVEN a function that fails every call, retried twice (as Lambda does, keeping the
    # request id: StartJob's starts are named after it, so a retry repeats its starts)
    function = SimpleNamespace(arn="f", logical_id="F", async_retries=2, on_failure=None)
    request_ids: list[str] = []

    def failing(arn: str, event: Any, request_id: str) -> tuple[None, dict[str, str]]:
        request_ids.append(request_id)
        return None, {"errorType": "Boom"}

    engine = _engine(None)
    engine.stack = SimpleNamespace(find_function=lambda name: function)
    engine.invoke = failing
    engine.async_failures = []
    engine.retry_delay_scale = 0.0
    engine.invoke_async = functools.partial(LocalEngine.invoke_async, engine)
    engine.deliver = functools.partial(LocalEngine.deliver, engine)
    # WHEN an S3 event is delivered twice (at least once, as S3 does)
    engine.deliver("f", {"n": 1})
    engine.deliver("f", {"n": 1})
    deadline = time.monotonic() + 30
    while len(request_ids) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    engine._events.shutdown(wait=True)
    # THEN each delivery ran three times under a request id of its own
    assert len(request_ids) == 6 and len(set(request_ids)) == 2, request_ids
    assert sorted(request_ids.count(r) for r in set(request_ids)) == [3, 3]


def test_a_multipart_upload_is_announced_once_as_s3_announces_it() -> None:
    # GIVEN moto's announcements of one multipart upload (a Put from its completion, then
    # CompleteMultipartUpload) and of a plain PUT
    sent: list[tuple[str, str]] = []
    send = _without_multipart_put(lambda _, name, __, key: sent.append((name, key.name)))
    parts = SimpleNamespace(name="uploads/big.mp4", multipart=object())
    plain = SimpleNamespace(name="uploads/small.mp4", multipart=None)
    # WHEN the engine passes them on
    send("1", "s3:ObjectCreated:Put", None, parts)
    send("1", "s3:ObjectCreated:CompleteMultipartUpload", None, parts)
    send("1", "s3:ObjectCreated:Put", None, plain)
    # THEN the multipart upload is announced once, as S3 does, and the PUT as ever
    assert sent == [
        ("s3:ObjectCreated:CompleteMultipartUpload", "uploads/big.mp4"),
        ("s3:ObjectCreated:Put", "uploads/small.mp4"),
    ]


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5", " "])
def test_a_lambda_worker_count_that_is_no_count_is_named(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow.errors import ConfigurationError
    from workflow.local import engine

    # GIVEN execution environments per function set to no whole number, or none (0 made
    # every invocation wait for an environment for good)
    monkeypatch.setenv("VIDFLOW_LAMBDA_WORKERS", value)
    # WHEN / THEN the engine refuses it by its name, before anything starts
    with pytest.raises(ConfigurationError, match="VIDFLOW_LAMBDA_WORKERS must be"):
        engine._lambda_workers()
    monkeypatch.setenv("VIDFLOW_LAMBDA_WORKERS", "3")
    assert engine._lambda_workers() == 3
