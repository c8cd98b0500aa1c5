"""scaleladder.continuum."""
