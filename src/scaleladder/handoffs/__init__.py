"""scaleladder.handoffs."""
