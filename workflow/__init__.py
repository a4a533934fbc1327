"""vidflow's core: probe, plan, transcode and publish video as adaptive-bitrate HLS."""

__version__ = "0.1.0"
