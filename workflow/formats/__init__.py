"""Output formats: every HLS playlist, DASH, and the JSON manifest with its schema."""
