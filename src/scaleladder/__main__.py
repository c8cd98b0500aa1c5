"""``python -m scaleladder`` is the ``scaleladder`` command."""
from .cli.main import main

main()
