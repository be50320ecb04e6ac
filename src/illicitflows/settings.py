"""Where illicitflows keeps its local state: one data directory, overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "ILLICITFLOWS_DATA_DIR"


def data_dir() -> Path:
    """The project's data directory (``$ILLICITFLOWS_DATA_DIR`` or ``./data``), created on use."""
    path = Path(os.environ.get(DATA_DIR_ENV, "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
