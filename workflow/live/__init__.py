"""Live streams: the playlist rules, the stream store, and one module per live step."""
