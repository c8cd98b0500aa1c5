"""scaleladder.mesoscale."""
