"""Playback tokens: which asset (or live stream) a viewer may play, until when, and for
whom, signed with the stack's playback secret (HMAC-SHA256).

A token is ``v1.<claims>.<signature>``, both parts base64url without padding; the claims
are compact JSON ``{"a": asset, "e": expiry (epoch seconds), "v": viewer}``. Anyone holding
the token can play the asset until it expires, so tokens are short-lived, never logged,
and a refusal never says why to the caller (``TokenRefused.reason`` is for the log).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from workflow.errors import ConfigurationError

VERSION = "v1"
# Longer than any real token; a longer one is refused before any work is done on it.
MAX_TOKEN_CHARS = 2048
# Assets and streams are named by vidflow (``names``); a viewer id is the caller's.
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")  # as the key service's path
_VIEWER = re.compile(r"[A-Za-z0-9._@:+-]{1,128}")
# A secret shorter than this is a configuration mistake, not a secret.
MIN_SECRET_BYTES = 32


class TokenRefused(Exception):
    """The token does not grant what was asked; ``reason`` is for the log, never the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: ``asset`` until ``expires_at``, to ``viewer`` if named."""

    asset: str
    expires_at: int
    viewer: str | None = None


def sign(secret: bytes, grant: Grant) -> str:
    """The token for ``grant``."""
    check_secret(secret)
    if not _ASSET.fullmatch(grant.asset) or ".." in grant.asset:
        raise ValueError(f"{grant.asset!r} is not an asset or stream name")
    if grant.viewer is not None and not _VIEWER.fullmatch(grant.viewer):
        raise ValueError("a viewer id is 1-128 letters, digits or ._@:+-")
    claims: dict[str, str | int] = {"a": grant.asset, "e": int(grant.expires_at)}
    if grant.viewer is not None:
        claims["v"] = grant.viewer
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{VERSION}.{body}.{_b64(_mac(secret, body))}"


def verify(secret: bytes, token: str | None, asset: str, now: float) -> Grant:
    """The grant of ``token`` if it is genuine, unexpired and for ``asset``; else
    ``TokenRefused``."""
    check_secret(secret)
    if not token:
        raise TokenRefused("no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused("token too long")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenRefused("not a vidflow token")
    _, body, signature = parts
    try:
        given = _unb64(signature)
    except ValueError:
        raise TokenRefused("malformed signature") from None
    # The signature first: nothing in an unsigned body is looked at.
    if not hmac.compare_digest(given, _mac(secret, body)):
        raise TokenRefused("bad signature")
    try:
        claims = json.loads(_unb64(body))
        grant = Grant(str(claims["a"]), int(claims["e"]), claims.get("v"))
    except (ValueError, KeyError, TypeError):
        raise TokenRefused("malformed claims") from None
    if grant.asset != asset:
        raise TokenRefused("token for another asset")
    if grant.expires_at <= now:
        raise TokenRefused("expired")
    return grant


def carried(query_token: str | None, authorization: str | None) -> str | None:
    """The token a request carries: its ``?token=``, else its ``Authorization: Bearer``."""
    if query_token:
        return query_token
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def check_secret(secret: bytes, name: str = "the playback secret") -> None:
    """Refuse a secret too short to sign with: the stack's setting, not a token, is wrong."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{name} is {len(secret)} bytes; it must be at least {MIN_SECRET_BYTES} (put a "
            "new random value of 64 characters in it: SECURITY.md, Tokens)"
        )


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, f"{VERSION}.{body}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of ``text``, which must be as ``_b64`` writes them: its last character's
    unused bits set would spell the same bytes another way, and one token must have one
    spelling (a deny-list or a cache keyed by the token's text)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if _b64(data) != text:
        raise ValueError("not base64url as written")
    return data
