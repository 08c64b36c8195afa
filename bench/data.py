"""Time the shapes generator: 10,000 images of 64 px (goal: under 10 s on a 2-core CPU).

Run: python bench/data.py [n] [image_size]
Prints wall and CPU time of a cold call (background sources loaded from scikit-image) and of a
warm call (sources cached in the process). On a shared machine the CPU time is the steadier
number.
"""

import sys
import time

from convviz_helpers import data


def timed(n, size, seed):
    wall, cpu = time.perf_counter(), time.process_time()
    shapes = data.make_shapes(n, image_size=size, seed=seed)
    return shapes, time.perf_counter() - wall, time.process_time() - cpu


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    for label, seed in (("cold", 0), ("warm", 1)):
        shapes, wall, cpu = timed(n, size, seed)
        print(f"make_shapes({n}, image_size={size}) {label}: {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"({shapes.images.nbytes / 2**20:.0f} MB of images)")


if __name__ == "__main__":
    main()
