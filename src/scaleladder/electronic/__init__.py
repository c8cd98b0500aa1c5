"""scaleladder.electronic."""
