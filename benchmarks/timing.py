"""Timing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def timed(function: Callable[[], object], repeat: int, warm_up: bool = True) -> float:
    """The median wall time of `repeat` calls of `function`, after one warm-up call
    (unless `warm_up` is False: for long workloads on a model that is warm already)."""
    if warm_up:
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
