"""``vidflow sign``: a playback URL for a protected asset, with a token that expires.

The token is signed with the stack's playback secret (its ``PlaybackSecretName``
output), read from the running local stack or, with ``--aws``, the deployed one. Anyone
holding the URL can play the asset until the token expires: keep tokens short-lived.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    monitored_stack,
    no_stack,
    span_seconds,
)

if TYPE_CHECKING:
    from workflow.cli.common import Commands


def add_sign(commands: Commands) -> None:
    from workflow.cli.watch import monitor_options

    sign = commands.add_parser(
        "sign",
        help="print a playback URL, with an expiring token, for a protected asset",
        description="The URL names the asset's master playlist at --playback-url; a player "
        "sends the token (?token=) with every request: playlists, segments and the key.",
    )
    sign.add_argument(
        "asset",
        type=_asset,
        help="the asset: its job id (outputs/<job id>/), or live.<stream> for a stream",
    )
    sign.add_argument(
        "--expires",
        type=span_seconds,
        default="2h",
        help="how long it plays: 90s, 30m, 2h, 7d (2h)",
    )
    sign.add_argument("--viewer", help="a viewer id the token names (the key service logs it)")
    sign.add_argument(
        "--playback-url",
        type=_playback_url,
        help="the origin players reach the output at (default: the local stack's, "
        "the endpoint's port + 1; with --aws, the stack's PlaybackBaseUrl is yours to give)",
    )
    sign.add_argument("--token-only", action="store_true", help="print the token alone")
    sign.add_argument(
        "--cdn-key-id",
        type=_cdn_key_id,
        help="with --cdn-private-key: also sign for CloudFront (the stack's CdnPublicKeyId)",
    )
    sign.add_argument(
        "--cdn-private-key",
        type=Path,
        help="the PEM private key of the stack's CdnPublicKey (PlaybackCdn=cloudfront)",
    )
    monitor_options(sign)
    sign.set_defaults(run=sign_url)


def sign_url(args: argparse.Namespace) -> int:
    """``vidflow sign``: print the asset's signed playback URL (or its token)."""
    from workflow.keys import tokens

    if (args.cdn_key_id is None) != (args.cdn_private_key is None):
        print("error: --cdn-key-id and --cdn-private-key go together", file=sys.stderr)
        return EXIT_USAGE
    from workflow.errors import ConfigurationError

    try:
        secret = _secret(args)
    except ConfigurationError as exc:  # the stack's secret, not the command, is wrong
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if secret is None:
        return no_stack(args.endpoint_url)
    try:
        token = tokens.sign(
            secret, tokens.Grant(args.asset, int(time.time() + args.expires), args.viewer)
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.token_only:
        print(token)
        return 0
    base = args.playback_url or (None if args.aws else _local_origin(args.endpoint_url))
    if base is None:
        print("error: with --aws, give --playback-url (your CDN in front of the output bucket)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    folder, master = _playback_keys(args.asset)
    url = f"{base.rstrip('/')}/{master}"
    if args.cdn_key_id is not None:
        from workflow.keys.cdn import CdnKeyError, signed_query

        try:
            pem = args.cdn_private_key.read_bytes()
            url = signed_query(
                url,
                f"{base.rstrip('/')}/{folder}",
                args.cdn_key_id,
                pem,
                time.time() + args.expires,
            )
        except (OSError, CdnKeyError) as exc:
            print(f"error: --cdn-private-key: {exc}", file=sys.stderr)
            return EXIT_USAGE
    print(f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode({'token': token})}")
    return 0


# A job id (``jobs.job_id``: the upload's name, cut to 40 characters, and a hash).
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}-[0-9a-f]{16}")


def _asset(value: str) -> str:
    """An asset a token can open: a job id, or ``live.<stream>``; else a usage error
    (a token for any other name would be printed, and open nothing)."""
    from workflow.live.paths import LIVE_ASSET_PREFIX, is_stream_id

    if value.startswith(LIVE_ASSET_PREFIX):
        if not is_stream_id(value.removeprefix(LIVE_ASSET_PREFIX)):
            raise argparse.ArgumentTypeError(
                f"{value!r}: a stream's name is 1 to 48 letters, digits, _ or - (live.<stream>)"
            )
    elif not _JOB_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is no job id (<name>-<16 hex digits>, as `vidflow process` and the "
            "Job Published event print it) nor live.<stream>"
        )
    return value


def _cdn_key_id(value: str) -> str:
    """A CloudFront public key's id (``K2JCJMDEHXQW5F``): put in the URL's query as it
    is, a space or ``&`` in it would cut it short, or add a parameter of its own."""
    if not re.fullmatch(r"[A-Z0-9]{1,128}", value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give the stack's CdnPublicKeyId, capital letters and digits"
        )
    return value


def _playback_url(value: str) -> str:
    """An origin players reach: http(s), with no query or fragment (the asset's path and
    the token are added after it)."""
    try:
        parts = urllib.parse.urlsplit(value)
        bad = bool(
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
            or parts.port == 0  # reading it refuses one past 65535
        )
    except ValueError:  # http://[::1; argparse would say "invalid _playback_url value"
        bad = True
    if bad:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give the origin's http(s) URL, with no query or fragment"
        )
    return value


def _playback_keys(asset: str) -> tuple[str, str]:
    """The asset's folder and its master playlist: a job's, or a live stream's live one."""
    from workflow.live.paths import LIVE_ASSET_PREFIX, StreamPaths

    if asset.startswith(LIVE_ASSET_PREFIX):
        paths = StreamPaths(asset.removeprefix(LIVE_ASSET_PREFIX))
        return paths.prefix, paths.live_master_key
    return f"outputs/{asset}/", f"outputs/{asset}/master.m3u8"


def _secret(args: argparse.Namespace) -> bytes | None:
    """The stack's playback secret, or None where no local stack runs."""
    from workflow.keys.service import PlaybackSecret

    found = monitored_stack(args)
    if found is None:
        return None
    stack, client = found
    return PlaybackSecret(client("secretsmanager"), stack.outputs()["PlaybackSecretName"]).get()


def _local_origin(endpoint_url: str) -> str | None:
    """The local stack's playback origin: on the port after its endpoint's."""
    parts = urllib.parse.urlsplit(endpoint_url)
    if parts.port is None:
        return None
    return f"{parts.scheme}://{parts.hostname}:{parts.port + 1}/"
