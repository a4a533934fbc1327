"""What a person runs on a laptop: the ``vidflow`` command, the console, the monitor and
the simulated venue encoder. Never part of a Lambda package."""
