"""HLS AES-128: each media segment encrypted whole with AES-128-CBC and PKCS#7 padding
(RFC 8216 4.3.2.4), under its asset's key and an IV of its own.

The IV is derived from the segment's path in the asset, so the chunk job that writes a
segment and the Publish that lists it agree without passing IVs around, and a retried
chunk writes the same IV for the same segment.

A live stream that rotates its key every N segments encrypts period ``n // N`` under
``period_key(content key, n // N)``: HKDF-derived, so each period's key is its own (one
that leaks opens its period only; the content key is never derived back) while the key
store keeps one wrapped key per stream.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

METHOD = "AES-128"


def segment_iv(path: str) -> bytes:
    """The IV of the segment at ``path`` (``<rung>/<file>``, relative to its asset)."""
    return hashlib.sha256(b"vidflow-iv:" + path.encode()).digest()[:16]


def period_key(key: bytes, period: int) -> bytes:
    """The key of rotation period ``period`` of a stream whose content key is ``key``."""
    info = f"vidflow-period:{period}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=len(key), salt=None, info=info).derive(key)


def encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def key_line(key_uri: str, iv: bytes) -> str:
    """The ``EXT-X-KEY`` tag that applies to the segments after it."""
    return f'#EXT-X-KEY:METHOD={METHOD},URI="{key_uri}",IV=0x{iv.hex()}'


def encrypt_segment(path: Path, key: bytes, name: str) -> None:
    """Encrypt the segment file at ``path`` in place, under ``key`` and the IV of its
    ``name`` in the asset (``<rung>/<file>``)."""
    path.write_bytes(encrypt(key, segment_iv(name), path.read_bytes()))


def segment_key_line(key_uri: str, name: str) -> str:
    """The ``EXT-X-KEY`` tag a playlist lists the segment ``name`` (``<rung>/<file>``)
    under: its key's URI and its own IV."""
    return key_line(key_uri, segment_iv(name))
