"""Timing helpers the benchmarks share: steady-state medians, contenders timed in turns.

Not a benchmark itself (``make bench`` runs every other script in this folder).
"""

import statistics
import time


def steady(function, repeats, warmup=2):
    """Median seconds of ``function()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(functions, repeats, warmup=2):
    """Median seconds of each function, timed in alternating rounds so that a change in machine
    load during the run hits every contender alike."""
    for function in functions:
        for _ in range(warmup):
            function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, spent in zip(functions, times):
            start = time.perf_counter()
            function()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]
