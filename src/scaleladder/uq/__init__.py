"""scaleladder.uq."""
