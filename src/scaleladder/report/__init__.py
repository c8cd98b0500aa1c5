"""scaleladder.report."""
