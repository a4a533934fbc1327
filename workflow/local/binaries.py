"""The laptop's ffmpeg: what tests, benchmarks and the tools run outside any function.

Functions never call this: their ffmpeg is the built Ffmpeg layer's, handed to them by the
local Lambda runtime as Lambda's ``/opt/bin`` would be.
"""

from __future__ import annotations

import os


def ffmpeg_binary() -> str:
    """``$FFMPEG_BINARY`` if set, else the static ffmpeg shipped in the imageio-ffmpeg wheel."""
    configured = os.environ.get("FFMPEG_BINARY")
    if configured:
        return configured
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
