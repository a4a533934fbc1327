"""The PUT patch: a large body is written to its file once, and its ETag is its MD5."""

from __future__ import annotations

import hashlib
import os

import pytest

from workflow.local import s3_put

ACCOUNT = {"account_id": "123456789012", "region_name": "us-east-1"}


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    s3_put.install()


def md5(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


@pytest.mark.parametrize(
    "size", [0, 1, s3_put.HASH_ASIDE - 1, s3_put.HASH_ASIDE, 5 * 1024 * 1024 + 7]
)
def test_a_key_holds_its_bytes_and_its_etag_is_their_md5(size: int) -> None:
    from moto.s3.models import FakeKey

    # GIVEN bytes on both sides of the threshold for hashing aside, and of moto's
    # 5 MB in-memory buffer (past it the key's buffer is a file from the start)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    # WHEN a key is made of them
    key = FakeKey("k", data, **ACCOUNT)

    # THEN it holds exactly those bytes and its ETag is their MD5
    assert key.value == data and key.size == size
    assert key.etag == md5(data)
    assert key._value_buffer._rolled == (size > key._max_buffer_size)


def test_a_value_set_again_before_its_etag_is_read_is_hashed_again() -> None:
    from moto.s3.models import FakeKey

    key = FakeKey("k", b"a" * (6 * 1024 * 1024), **ACCOUNT)
    key.value = "second"
    assert (key.value, key.etag) == (b"second", md5(b"second"))


def test_an_etag_moto_was_given_is_kept() -> None:
    from moto.s3.models import FakeKey

    key = FakeKey("k", b"parts" * 1000, etag="0123abcd-2", **ACCOUNT)
    assert key.etag == '"0123abcd-2"'


def test_a_large_keys_etag_is_known_without_reading_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.s3.models import FakeKey

    # GIVEN a key past moto's buffer, whose file can no longer be read
    data = os.urandom(6 * 1024 * 1024)
    key = FakeKey("k", data, **ACCOUNT)

    def unreadable(*args: object) -> bytes:
        raise AssertionError("the ETag read the key back")

    monkeypatch.setattr(key._value_buffer, "read", unreadable)

    # WHEN its ETag is asked for, THEN it is the MD5 taken while the bytes were written
    assert key.etag == md5(data)
