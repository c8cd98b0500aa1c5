"""scaleladder.cli."""
