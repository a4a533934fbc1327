"""Each patch of moto refuses a moto it was not written for: another version, or changed
code where it reaches in. The engine then does not start, rather than serve wrong bytes."""

from __future__ import annotations

import re
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
from workflow.local.moto_pins import MotoChangedError

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
