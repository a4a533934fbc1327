"""The VOD state machine's steps, one module per state."""
