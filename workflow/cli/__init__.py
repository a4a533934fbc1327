"""What a person runs on a laptop: the ``vidflow`` command, the console, the monitor and
the simulated venue encoder. Never part of a Lambda package."""

import os

# The X-Ray SDK makes a botocore client as it is imported (by ``workflow.tracing``), and
# botocore reads the shell's AWS profile for it: one this machine lacks stopped every
# command, ``--version`` too, with a traceback. The SDK is imported here without it; the
# commands that reach AWS read the profile themselves, and say what is wrong with it.
_profiles = {
    n: os.environ.pop(n) for n in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if n in os.environ
}
try:
    import aws_xray_sdk.core  # noqa: F401
finally:
    os.environ.update(_profiles)
