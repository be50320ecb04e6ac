"""Stage timings add up to the time they cover, stage by stage."""

from __future__ import annotations

import time

from illicitflows.serving.laps import Laps


def test_laps_time_each_stage_back_to_back_and_add_repeats() -> None:
    started = time.perf_counter()
    laps = Laps()
    time.sleep(0.02)
    laps.lap("a")
    time.sleep(0.01)
    laps.lap("b")
    time.sleep(0.01)
    laps.lap("a")
    elapsed = time.perf_counter() - started
    assert list(laps.seconds) == ["a", "b"]
    assert laps.seconds["a"] >= 0.03 and 0.01 <= laps.seconds["b"] < laps.seconds["a"]
    assert sum(laps.seconds.values()) <= elapsed
