"""The shell's AWS config and credentials files, and its profile of them, which a local
stack reads none of: the user's would steer its clients (``addressing_style = virtual``
under ``s3`` sent the engine's S3 calls to a host of the bucket's name) or, where they do
not parse, stop them. Imports nothing heavy: the CLI uses it before anything else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

PROFILES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
FILES = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def forget_aws_files() -> None:
    """Read no AWS config or credentials file, and no profile of one, from here on (a
    function's worker is given the same)."""
    os.environ.update(dict.fromkeys(FILES, os.devnull))
    for name in PROFILES:
        os.environ.pop(name, None)


@contextmanager
def without_aws_files() -> Iterator[None]:
    """Forget the shell's AWS files while inside, and give them back after."""
    shell = {name: os.environ[name] for name in (*PROFILES, *FILES) if name in os.environ}
    forget_aws_files()
    try:
        yield
    finally:
        for name in (*PROFILES, *FILES):
            os.environ.pop(name, None)
        os.environ.update(shell)
