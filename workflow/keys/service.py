"""The key service: a Lambda function URL that hands an asset's content key to a player
holding a valid playback token, and nothing to anyone else.

``GET /keys/<asset>`` (``/keys/<asset>/<period>``: a rotating stream's period key) with
the token in ``?token=`` or ``Authorization: Bearer`` answers the key's 16 bytes (HLS
``EXT-X-KEY``); ``POST`` of a W3C ClearKey license request (``{"kids": [...]}``) to the
same path answers a ClearKey license (DASH ``ContentProtection``, EME). Every refusal of
a token is the same bare 403, whatever the reason (no token, forged, expired, another
asset's); the reason goes to the log, the token never does.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from workflow.errors import ConfigurationError
from workflow.keys import segments as aes128
from workflow.keys import tokens
from workflow.keys.store import ContentKeyMissingError, KeyStore
from workflow.live.paths import LIVE_ASSET_PREFIX, StreamPaths
from workflow.live.store import StreamTable

log = logging.getLogger("vidflow.keys")

KEY_PATH = "/keys/"
# ``/keys/<asset>``, or ``/keys/<asset>/<period>`` for a rotating stream's period key.
_ASSET_PATH = re.compile(r"/keys/([A-Za-z0-9][A-Za-z0-9._-]{0,254})(?:/(0|[1-9][0-9]{0,8}))?")
# How long a function keeps the secret it read: a rotated secret is in use within this.
SECRET_SECONDS = 300.0
# A value read last serves this long while Secrets Manager cannot be read, a read tried
# again at most this often.
SECRET_STALE_SECONDS = 3600.0
SECRET_RETRY_SECONDS = 30.0


@dataclass
class PlaybackSecret:
    """The stack's token-signing secret, read from Secrets Manager and kept a while."""

    secrets: Any
    name: str
    clock: Callable[[], float] = time.monotonic
    _value: bytes = b""
    _read_at: float = field(default=-float("inf"))
    _failed_at: float = field(default=-float("inf"))

    def get(self) -> bytes:
        """The secret; ``ConfigurationError`` if the value put in it is too short to sign
        with (it is read again next time, so a mended value is taken at once), or if it
        cannot be read and no value read in the last ``SECRET_STALE_SECONDS`` is kept.

        A read that fails (Secrets Manager throttling or down) keeps the value read last,
        tried again every ``SECRET_RETRY_SECONDS``: one failed read must not turn every
        player away (and every request after it hammer the service again)."""
        now = self.clock()
        kept = self._value if now - self._read_at <= SECRET_STALE_SECONDS else b""
        if kept and (
            now - self._read_at <= SECRET_SECONDS or now - self._failed_at < SECRET_RETRY_SECONDS
        ):
            return kept
        try:
            found = self.secrets.get_secret_value(SecretId=self.name)["SecretString"].encode()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self._failed_at = now
            if kept:
                log.warning("the playback secret %s was not read again: %s", self.name, exc)
                return kept
            unread = f"the playback secret {self.name} was not read: {exc}"
            raise ConfigurationError(unread) from None
        tokens.check_secret(found, f"the playback secret {self.name}")
        self._value, self._read_at = found, now
        return self._value


@dataclass
class PlaybackGate:
    """What a playback origin (a CDN, or the local one) lets through: everything under a
    protected asset (``outputs/<asset>/``: playlists, segments, images, manifest; an
    encrypted stream's ``live/<stream>/``) only with a valid token for that asset;
    everything else as it is."""

    store: KeyStore
    secret: PlaybackSecret
    clock: Callable[[], float] = time.time
    # Assets known protected: an asset's key is made before any of its output exists.
    _protected: set[str] = field(default_factory=set)

    def allows(self, key: str, token: str | None) -> bool:
        folder, _, rest = key.partition("/")
        name = rest.partition("/")[0]
        # A VOD asset is its job id; a live stream (and its recording) ``live.<stream>``.
        asset = {"outputs": name, "live": StreamPaths(name).asset}.get(folder, "") if name else ""
        if not asset:
            return True
        if asset not in self._protected:
            if not self.store.exists(asset):
                return True
            self._protected.add(asset)
        try:
            tokens.verify(self.secret.get(), token, asset, self.clock())
        except tokens.TokenRefused as refused:
            log.warning("playback refused: %s (asset %s)", refused.reason, asset)
            return False
        except ConfigurationError as exc:
            log.error("playback refused: %s (asset %s)", exc, asset)
            return False
        return True


def key_service_uri(base_url: str, asset: str, period: int | None = None) -> str:
    """Where players fetch ``asset``'s key (or its rotation period's): the key service's
    URL and the asset's path. Without the URL nothing could fetch it: a named error, before
    any playlist names a key nobody can reach."""
    if not base_url:
        raise ConfigurationError(
            f"protected output ({asset}) needs KEY_SERVICE_URL (the key service)"
        )
    uri = f"{base_url.rstrip('/')}{KEY_PATH}{asset}"
    return uri if period is None else f"{uri}/{period}"


# The highest sequence of a stream admitted for publishing (None: none yet, or no stream).
LastAdmitted = Callable[[str], int | None]


def last_admitted(table: StreamTable) -> LastAdmitted:
    """How far each stream of ``table`` has got: no playlist names a segment past it."""

    def last(stream: str) -> int | None:
        record = table.get(stream)
        if record is None:
            return None
        known = [record.admitted, (record.ending or {}).get("last_sequence")]
        return max((int(n) for n in known if n is not None), default=None)

    return last


def answer(
    request: dict[str, Any],
    store: KeyStore,
    secret: PlaybackSecret,
    now: float,
    admitted: LastAdmitted | None = None,
) -> dict[str, Any]:
    """The function URL response (payload format 2.0) to ``request``.

    A rotating stream's period key is handed out only once a segment of its period is
    admitted for publishing (``admitted``: none without it): a token that is valid now
    must not stock up the keys of periods to come, which would open them after it
    expires."""
    method = request.get("requestContext", {}).get("http", {}).get("method", "GET")
    if method not in ("GET", "HEAD", "POST"):
        return _bare(405, "method not allowed")
    matched = _ASSET_PATH.fullmatch(request.get("rawPath", ""))
    if matched is None:
        return _bare(404, "not found")
    asset = matched[1]
    try:
        grant = tokens.verify(secret.get(), _token(request), asset, now)
    except tokens.TokenRefused as refused:
        log.warning("key refused: %s (asset %s)", refused.reason, asset)
        return _bare(403, "forbidden")
    except ConfigurationError as exc:
        # The stack's fault, not the player's: said in the log (and the function URL's
        # 5xx count, which KeyServiceErrorsAlarm watches), never to the player.
        log.error("key service unavailable: %s", exc)
        return _bare(503, "service unavailable")
    try:
        key = store.get(asset)
    except ContentKeyMissingError:
        log.warning("key refused: no key (asset %s)", asset)
        return _bare(404, "not found")
    if bool(key.rotation) != (matched[2] is not None):
        # A rotating stream hands out period keys only (its own key opens every period);
        # any other asset has no periods.
        why = "period keys only" if key.rotation else "no key periods"
        log.warning("key refused: %s (asset %s)", why, asset)
        return _bare(404, "not found")
    if matched[2] is not None and not _begun(asset, int(matched[2]), key.rotation, admitted):
        log.warning("key refused: period %s not begun (asset %s)", matched[2], asset)
        return _bare(404, "not found")
    content = key.key if matched[2] is None else aes128.period_key(key.key, int(matched[2]))
    if method == "POST":
        return _clear_key_license(request, key.key_id, content, asset, grant.viewer)
    log.info("key served (asset %s, viewer %s)", asset, grant.viewer or "-")
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/octet-stream",
            "Cache-Control": "private, no-store",
        },
        "body": base64.b64encode(content).decode(),
        "isBase64Encoded": True,
    }


def _begun(asset: str, period: int, rotation: int, admitted: LastAdmitted | None) -> bool:
    """Whether a segment of ``asset``'s rotation ``period`` was admitted for publishing."""
    last = None if admitted is None else admitted(asset.removeprefix(LIVE_ASSET_PREFIX))
    return last is not None and period <= last // rotation


def _clear_key_license(
    request: dict[str, Any], key_id: str, key: bytes, asset: str, viewer: str | None
) -> dict[str, Any]:
    """A W3C ClearKey license (a JSON Web Key set) for the request's key ids, if the
    asset's key is among them."""
    try:
        body = request.get("body") or ""
        raw = base64.b64decode(body) if request.get("isBase64Encoded") else body.encode()
        kids = json.loads(raw)["kids"]
        wanted = {base64.b64decode(k + "=" * (-len(k) % 4), b"-_", validate=True) for k in kids}
    except (ValueError, KeyError, TypeError, RecursionError):
        log.warning("key refused: not a ClearKey license request (asset %s)", asset)
        return _bare(400, "bad request")
    kid = bytes.fromhex(key_id)
    if kid not in wanted:
        log.warning("key refused: license request for another key (asset %s)", asset)
        return _bare(404, "not found")
    log.info("license served (asset %s, viewer %s)", asset, viewer or "-")
    jwk = {"kty": "oct", "kid": _base64url(kid), "k": _base64url(key)}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Cache-Control": "private, no-store"},
        "body": json.dumps({"keys": [jwk], "type": "temporary"}),
    }


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _token(request: dict[str, Any]) -> str | None:
    query = request.get("queryStringParameters") or {}
    headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
    return tokens.carried(query.get("token"), headers.get("authorization"))


def _bare(status: int, text: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain", "Cache-Control": "no-store"},
        "body": text,
    }
