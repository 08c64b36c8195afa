"""How long the shapes dataset takes to draw: the training chapter draws 9,000 images.

Prints the time for 10,000 images of 64 px (goal: under 10 s on a 2-core CPU) and the rate.
"""

import time

from convviz_helpers import data


def main(n=10_000, size=64):
    data.make_shapes(8, size, seed=0)  # load and cache the background photos first
    start = time.perf_counter()
    shapes = data.make_shapes(n, size, seed=0)
    seconds = time.perf_counter() - start
    print(f"make_shapes({n}, {size}): {seconds:.2f} s ({n / seconds:,.0f} images/s), "
          f"{shapes.images.nbytes / 2**20:.0f} MiB of images")


if __name__ == "__main__":
    main()
