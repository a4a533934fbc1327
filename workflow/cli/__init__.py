"""What a person runs on a laptop: the ``vidflow`` command, the console, the monitor and
the simulated venue encoder. Never part of a Lambda package."""

import os

from workflow.local.aws_files import without_aws_files

# A standard descriptor the shell closed (`2>&-`) is given /dev/null before anything
# opens a file or a socket: the X-Ray SDK's UDP socket, imported below, took fd 2, and
# every worker and ffmpeg started after wrote its errors into it (a child's `echo >&2`
# failed). Each open takes the lowest free descriptor: the one closed, in this order.
for _fd in (0, 1, 2):
    try:
        os.fstat(_fd)
    except OSError:
        os.open(os.devnull, os.O_RDWR)

# The X-Ray SDK makes a botocore client as it is imported (by ``workflow.tracing``), and
# botocore reads the shell's AWS profile and config file for it: a profile this machine
# lacks, or a config file that does not parse, stopped every command, ``--version`` too,
# with a traceback. The SDK is imported here without them; the commands that reach AWS
# read them themselves, and say what is wrong with them.
with without_aws_files():
    import aws_xray_sdk.core  # noqa: F401
