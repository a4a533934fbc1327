"""What a person runs on a laptop: the ``vidflow`` command, the console, the monitor and
the simulated venue encoder. Never part of a Lambda package."""

import os

# The X-Ray SDK makes a botocore client as it is imported (by ``workflow.tracing``), and
# botocore reads the shell's AWS profile and config file for it: a profile this machine
# lacks, or a config file that does not parse, stopped every command, ``--version`` too,
# with a traceback. The SDK is imported here without them; the commands that reach AWS
# read them themselves, and say what is wrong with them.
_AWS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_shell = {name: os.environ.pop(name) for name in _AWS if name in os.environ}
os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
try:
    import aws_xray_sdk.core  # noqa: F401
finally:
    for _name in _AWS:
        os.environ.pop(_name, None)
    os.environ.update(_shell)
