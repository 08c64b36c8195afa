"""How much one batched pass saves over one sub-model per layer when collecting feature maps.

The common recipe (the seed notebooks, many tutorials) builds ``keras.Model(model.input,
layer.output)`` for each layer and calls ``predict`` on it, so every layer re-runs all the
layers before it. ``activations.feature_maps`` records every layer during one forward pass.
Both collect every shown layer of VGG16 (random weights, 224 px, batch of 8); the compute
floor is one compiled forward pass of the whole model. Each is warmed up first, then timed
``--repeats`` times, interleaved; median wall and CPU times and their ratios are printed.

Usage: python bench/activations.py [--repeats 3] [--batch 8]
"""

import argparse
import os
import statistics
import time

import numpy as np

from convviz_helpers import activations, gradients, models
from convviz_helpers._tf import keras


def timed(runs, repeats):
    """Median wall and CPU seconds of each ``runs`` entry, after one untimed warm-up call each.

    The runs are interleaved round by round, so a change in the machine's load (it is shared)
    hits every method alike. CPU time (this process, all threads) is less sensitive to other
    processes than wall time. Returns dict name -> (wall, cpu).
    """
    for run in runs.values():
        run()
    samples = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(statistics.median(column) for column in zip(*rows)) for name, rows in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    model = models.pretrained("vgg16", weights=None)
    images = np.random.default_rng(0).uniform(0, 1, (args.batch, 224, 224, 3)).astype(np.float32)
    layers = activations.shown_layers(model)
    # Built once, outside the timing: the comparison is about the forward passes.
    submodels = [keras.Model(model.input, layer.output) for layer in layers]

    def one_pass():
        return activations.feature_maps(model, images)

    def per_layer():
        return [submodel.predict(images, verbose=0) for submodel in submodels]

    def floor():
        return gradients.predict(model, images)

    # Same numbers both ways, or the timing compares different work.
    maps, reference = one_pass(), per_layer()
    for (name, got), want in zip(maps.items(), reference):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=name)

    load = os.getloadavg()[0]
    times = timed({"one pass": one_pass, "per layer": per_layer, "floor": floor}, args.repeats)
    print(f"VGG16 (weights=None), {len(layers)} layers, batch {args.batch} at 224 px, median of "
          f"{args.repeats}; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores")
    print(f"{'':36s} {'wall s':>8s} {'CPU s':>8s}")
    for label, name in (("one batched pass (feature_maps)", "one pass"),
                        ("one sub-model per layer (predict)", "per layer"),
                        ("compute floor (one forward pass)", "floor")):
        print(f"{label:36s} {times[name][0]:8.2f} {times[name][1]:8.2f}")
    for column, unit in enumerate(("wall", "CPU")):
        ratio = times["per layer"][column] / times["one pass"][column]
        overhead = times["one pass"][column] / times["floor"][column]
        print(f"{unit:4s}: per-layer / one pass {ratio:5.1f}x, one pass / floor {overhead:4.2f}x")

if __name__ == "__main__":
    main()
