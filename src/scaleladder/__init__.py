"""scaleladder: multiscale materials modelling with units, provenance and error budgets."""
__version__ = "0.1.0"
