"""Progress reporting for long steps: a callback the library calls, a rich bar the CLI draws."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

#: ``step(label)`` marks one unit of work done; library code accepts one and defaults to no-op.
StepCallback = Callable[[str], None]


def no_progress(label: str) -> None:
    """The default callback: report nothing."""


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[StepCallback]:
    """A rich progress bar with ``total`` steps; yields the callback that advances it."""
    if not enabled:
        yield no_progress
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} {task.fields[label]}"),
               TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, label="")

        def step(label: str) -> None:
            bar.update(task, advance=1, label=label)

        yield step
