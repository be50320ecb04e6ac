"""Where a request's time goes: seconds per named stage, timed back to back."""

from __future__ import annotations

from time import perf_counter


class Laps:
    """Stage timings of one request; each :meth:`lap` closes the stage running since the last
    one (or since creation)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = perf_counter()

    def lap(self, stage: str) -> None:
        """The time since the previous lap, added to ``stage``."""
        now = perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def merge(self, other: Laps) -> None:
        """Add the stages of ``other`` (e.g. those of the micro-batch a request was scored in);
        the next lap starts now."""
        for stage, seconds in other.seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self._last = perf_counter()
