"""Each patch of moto refuses a moto it was not written for: another version, or changed
code where it reaches in. The engine then does not start, rather than serve wrong bytes."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import moto
import pytest

from workflow.local import (
    asl_clients,
    asl_import,
    choice_paths,
    dispatch,
    dynamodb_size,
    dynamodb_transactions,
    eventbridge,
    execution_names,
    fail_errors,
    map_failures,
    presigned,
    ranged_get,
    s3_put,
    sse_c,
    terminal_errors,
)
from workflow.local.moto_pins import MotoChangedError, once

PATCHES = [
    pytest.param(ranged_get, id="ranged_get"),
    pytest.param(s3_put, id="s3_put"),
    pytest.param(asl_import, id="asl_import"),
    pytest.param(asl_clients, id="asl_clients"),
    pytest.param(eventbridge, id="eventbridge"),
    pytest.param(dispatch, id="dispatch"),
    pytest.param(fail_errors, id="fail_errors"),
    pytest.param(presigned, id="presigned"),
    pytest.param(dynamodb_size, id="dynamodb_size"),
    pytest.param(dynamodb_transactions, id="dynamodb_transactions"),
    pytest.param(execution_names, id="execution_names"),
    pytest.param(terminal_errors, id="terminal_errors"),
    pytest.param(map_failures, id="map_failures"),
    pytest.param(choice_paths, id="choice_paths"),
    pytest.param(sse_c, id="sse_c"),
]


@pytest.mark.parametrize("patch", PATCHES)
def test_the_installed_moto_is_the_one_the_patch_was_read_on(patch: ModuleType) -> None:
    # Fails when moto is upgraded: re-read the code the patch names, then re-pin it.
    patch.check()


@pytest.mark.parametrize("patch", PATCHES)
def test_another_moto_version_stops_the_engine(
    patch: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    module = patch.__name__.rsplit(".", 1)[-1]
    with pytest.raises(MotoChangedError, match=rf"moto is 5\.3\.0.*{module}\.py"):
        patch.check()


@pytest.mark.parametrize("patch", PATCHES)
def test_changed_moto_code_stops_the_engine(
    patch: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = next(iter(patch.EXPECTED_SOURCES))
    monkeypatch.setattr(patch, "EXPECTED_SOURCES", dict(patch.EXPECTED_SOURCES, **{name: "0" * 16}))
    with pytest.raises(MotoChangedError, match=rf"{re.escape(name)} differ"):
        patch.check()


def test_a_patch_is_installed_once_however_many_threads_ask() -> None:
    calls: list[int] = []
    started = threading.Barrier(8)

    @once
    def install() -> None:
        calls.append(1)

    def ask() -> None:
        started.wait()
        install()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: ask(), range(8)))
    install()
    assert calls == [1]


def test_an_install_that_raised_is_tried_again() -> None:
    attempts: list[int] = []

    @once
    def install() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise MotoChangedError("first try")

    with pytest.raises(MotoChangedError, match="first try"):
        install()
    install()
    install()
    assert len(attempts) == 2
