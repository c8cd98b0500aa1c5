"""scaleladder.coupling."""
