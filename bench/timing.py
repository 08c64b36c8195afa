"""Timing helpers the benchmarks share: steady-state medians, contenders timed in turns.

Not a benchmark itself (``make bench`` runs every other script in this folder).
"""

import random
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


def interleaved(functions, repeats, warmup=2, cpu=False):
    """Median seconds of each function, timed in alternating rounds so that a change in machine
    load during the run hits every contender alike.

    Each round runs the functions in a new random order (seeded): a call pays for what ran just
    before it (memory a big backward pass left to free or fault back in), and in a fixed order
    the same contender would always pay. On JAX, feature maps timed right after the guided
    backprop floor measured 1.20x their floor, and 0.76x in the swapped order.

    ``cpu=True`` also returns the median process CPU seconds of each (all threads together), a
    second view of the work a call does when other processes share the cores. Returns
    ``(wall, cpu)`` lists then.
    """
    for function in functions:
        for _ in range(warmup):
            function()
    times = [[] for _ in functions]
    spent_cpu = [[] for _ in functions]
    shuffler = random.Random(0)
    order = list(range(len(functions)))
    for _ in range(repeats):
        shuffler.shuffle(order)
        for index in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            functions[index]()
            times[index].append(time.perf_counter() - start)
            spent_cpu[index].append(time.process_time() - start_cpu)
    wall = [statistics.median(spent) for spent in times]
    return (wall, [statistics.median(used) for used in spent_cpu]) if cpu else wall
