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


def interleaved(first: Callable[[], object], second: Callable[[], object],
                repeat: int) -> tuple[float, float]:
    """The median wall times of `first` and `second`, run by turns (a busy machine slows
    both alike), after one warm-up call each."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for function, kept in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            function()
            kept.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def counting_cpu(function: Callable[[], object], kept: list[float]) -> Callable[[], object]:
    """`function`, appending to `kept` the CPU seconds this process (all its threads) spent
    in each call: what a busy machine distorts far less than wall time."""
    def counted() -> object:
        started = time.process_time()
        result = function()
        kept.append(time.process_time() - started)
        return result
    return counted
