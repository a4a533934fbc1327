"""What a person runs on a laptop: the ``vidflow`` command, the console, the monitor and
the simulated venue encoder. Never part of a Lambda package."""

from workflow.local.aws_files import without_aws_files

# The X-Ray SDK makes a botocore client as it is imported (by ``workflow.tracing``), and
# botocore reads the shell's AWS profile and config file for it: a profile this machine
# lacks, or a config file that does not parse, stopped every command, ``--version`` too,
# with a traceback. The SDK is imported here without them; the commands that reach AWS
# read them themselves, and say what is wrong with them.
with without_aws_files():
    import aws_xray_sdk.core  # noqa: F401
