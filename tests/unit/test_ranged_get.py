"""The ranged-GET patch's span of a key's bytes slices like the bytes (its pins: test_moto_pins)."""

from __future__ import annotations

from workflow.local import ranged_get


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
