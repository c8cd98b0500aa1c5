"""scaleladder.ladders."""
