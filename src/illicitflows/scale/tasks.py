"""Running a stage's tasks on the cluster (a progress bar per stage, clear errors) and writing
their outputs atomically (a task retried after a lost worker rewrites the same file)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import Client, Future, as_completed
from distributed.scheduler import KilledWorker

from illicitflows.progress import progress_bar


class ScaleError(RuntimeError):
    """A distributed stage could not complete; the message names the stage and the task."""


def run_tasks(client: Client, futures: list[Future], stage: str,
              show_progress: bool = True) -> list[Any]:
    """The results of ``futures`` in their order, once all are done; a bar advances per task.
    A task whose workers died more often than the scheduler allows, or that raised, fails
    the stage with its name: a stage never returns short."""
    labels = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    with progress_bar(stage, len(futures), enabled=show_progress) as step:
        for future in as_completed(futures):
            i = labels[future.key]
            try:
                results[i] = future.result()
            except KilledWorker as error:
                client.cancel(futures)
                raise ScaleError(f"{stage} {i + 1}/{len(futures)}: the workers running it died "
                                 f"repeatedly ({error}); see the workers' logs (memory limit?)"
                                 ) from error
            except Exception:
                client.cancel(futures)
                raise
            step(f"{stage} {i + 1}")
    return results


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (index dropped) to ``path`` through a temporary name and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    frame.to_parquet(temporary, index=False)
    os.replace(temporary, path)
    return path
