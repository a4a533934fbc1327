"""Protected playback: per-asset content keys kept under KMS, segment encryption, and the
playback tokens the key service and the origin check."""
