"""The ranged-GET patch refuses a moto it was not written for."""

from __future__ import annotations

import moto
import pytest

from workflow.local import ranged_get


def test_the_installed_moto_is_the_one_the_patch_was_read_on() -> None:
    # Fails when moto is upgraded: re-read its S3 range code, then update the pins.
    ranged_get.check()


def test_another_moto_version_stops_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(ranged_get.MotoChangedError, match=r"moto is 5\.3\.0"):
        ranged_get.check()


def test_changed_moto_code_stops_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = dict(ranged_get.EXPECTED_SOURCES, **{"S3Response.get_object": "0" * 16})
    monkeypatch.setattr(ranged_get, "EXPECTED_SOURCES", changed)
    with pytest.raises(ranged_get.MotoChangedError, match=r"S3Response\.get_object"):
        ranged_get.check()


def test_a_key_body_slices_like_bytes() -> None:
    from moto.s3.models import FakeKey

    data = bytes(range(256)) * 10000
    key = FakeKey("k", data, account_id="123456789012", region_name="us-east-1")
    body = ranged_get._KeyBody(key)
    assert len(body) == len(data)
    for part in (slice(0, 1), slice(5, 300), slice(10000, 2000000), slice(9, 3), slice(-5, None)):
        assert (len(body[part]), bytes(body[part])) == (len(data[part]), data[part])
    assert bytes(body[100:][5:10]) == data[100:][5:10]
    assert bytes(body) == data
    assert max(len(block) for block in body.blocks()) == ranged_get.BLOCK
    key.dispose()
