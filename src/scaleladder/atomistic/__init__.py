"""scaleladder.atomistic."""
