"""``python -m illicitflows.cli``."""

from illicitflows.cli import app

app()
