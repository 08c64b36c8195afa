"""Grad-CAM, guided backpropagation, feature maps and filter patterns against their compute
floor, and memory over many calls of random batch sizes, on this process's Keras backend.

Run once per backend (Keras fixes it per process):

    KERAS_BACKEND=tensorflow .venv/bin/python bench/backends.py
    KERAS_BACKEND=jax        .venv/bin/python bench/backends.py
    .venv/bin/python bench/backends.py --calls 200 --skip-patterns   # a shorter run

The floors are written with the backend's own compile and gradient (through the seam of
``convviz_helpers.gradients``: ``tf.function`` + ``GradientTape``, or ``jax.jit`` +
``jax.value_and_grad``) on the same model, whole batch in one call, and nothing else:

- Grad-CAM floor: one forward pass and one backward pass to the layer (the gradient of each
  image's top score with respect to the layer's output), results as numpy;
- guided-backpropagation floor: one forward pass and one backward pass to the input, with the
  plain ReLU gradient: a floor a little below the method's own, which also drops each ReLU's
  negative gradients (an elementwise select per ReLU), so a ratio of 1.0 here is at the floor;
- feature-map floor: one forward pass recording the same layers, results as numpy;
- filter-pattern floor: ``steps`` forward and backward passes of the same batch through the
  model up to the layer, in one compiled loop.

No input checks, class resolution, weighting, upsampling or normalising in a floor. Prints the
median of interleaved repeats and the ratio to the floor (goal: <= 1.1), with the load average
before and after (the machine may be shared: compare ratios from one run, not seconds), and the
ratio of median process CPU times (all threads), a second view when other processes share the
cores. Then
``--calls`` Grad-CAM calls with batch sizes drawn from 1..64: growth of the process's resident
memory (goal: < 50 MB), the median and the slowest 1 % of calls, and how many functions were
compiled (``gradients.traces``).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from convviz_helpers import activations, cam, config, filters, gradients, models  # noqa: E402
from convviz_helpers._tf import keras  # noqa: E402
from timing import interleaved  # noqa: E402

ops = keras.ops
GOAL = 1.1


def _numpy(compiled):
    return lambda *args: [np.asarray(part) for part in compiled(*args)]


def grad_cam_floor(model, layer, shape):
    def run(images):
        def forward(x, taps):
            with gradients.recording([layer], taps=taps) as records:
                scores = model(x, training=False)
            return ops.sum(ops.max(scores, axis=-1)), (), [records[0][0]]

        _, activations, grads, _ = gradients.backend.gradients(forward, images, False)
        return activations[0], grads[0]

    return _numpy(gradients.compile(model, run, [((None, *shape), "float32")]))


def input_gradient_floor(model, shape):
    def run(images):
        def forward(x, taps):
            return ops.sum(ops.max(model(x, training=False), axis=-1)), (), []

        return [gradients.backend.gradients(forward, images, True)[3]]

    return _numpy(gradients.compile(model, run, [((None, *shape), "float32")]))


def forward_floor(model, layers, shape):
    def run(images):
        with gradients.recording(layers) as records:
            model(images, training=False)
        return [record[0] for record in records]

    return _numpy(gradients.compile(model, run, [((None, *shape), "float32")]))


def pattern_floor(model, layer, shape, steps):
    extractor = keras.Model(model.inputs, layer.output)
    step_gradient = gradients.value_and_gradient(
        lambda x: ops.sum(ops.reshape(extractor(x, training=False), (ops.shape(x)[0], -1)), axis=1))

    def run(x):
        # Feed the gradient back so the passes form a chain and none can be skipped.
        return ops.fori_loop(0, steps, lambda i, x: x + step_gradient(x)[1], x)

    compiled = gradients.compile(extractor, run, [((None, *shape), "float32")])
    return lambda images: np.asarray(compiled(images))


def _load():
    return f"load average {os.getloadavg()[0]:.1f}"


def report(what, contenders, repeats):
    """Time ``contenders`` (name -> (ours, floor)) in interleaved turns and print each ratio."""
    print(f"\n{what} ({_load()} before)")
    functions = [f for pair in contenders.values() for f in pair]
    times, cpu = interleaved(functions, repeats=repeats, cpu=True)
    for index, name in enumerate(contenders):
        ours, bare = times[2 * index], times[2 * index + 1]
        print(f"  {name:<18} {ours * 1e3:8.1f} ms   floor {bare * 1e3:8.1f} ms   ratio {ours / bare:.2f} "
              f"(goal <= {GOAL}; CPU time ratio {cpu[2 * index] / cpu[2 * index + 1]:.2f})")
    print(f"  ({_load()} after; medians of {repeats} interleaved repeats)")


def methods_against_floors(what, model, images, repeats):
    layer = models.last_conv_layer(model)
    shown = activations.shown_layers(model)
    shape = images.shape[1:]
    cam_floor = grad_cam_floor(model, layer, shape)
    guided_floor = input_gradient_floor(model, shape)
    maps_floor = forward_floor(model, shown, shape)
    report(f"{what}; Grad-CAM at {layer.name}, feature maps of {len(shown)} layers", {
        "cam.grad_cam": (lambda: cam.grad_cam(model, images), lambda: cam_floor(images)),
        "guided_backprop": (lambda: cam.guided_backprop(model, images), lambda: guided_floor(images)),
        "feature_maps": (lambda: activations.feature_maps(model, images), lambda: maps_floor(images)),
    }, repeats)


def _rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_over_calls(model, calls, seed=0):
    """Grad-CAM ``calls`` times on batches of 1..64 random sizes: RSS growth, latencies, traces."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(64, *model.input_shape[1:])).astype(np.float32)
    for size in (1, 64):  # the first compilation and the largest batch are not growth
        cam.grad_cam(model, images[:size])
    start_rss, start_traces = _rss_mb(), gradients.traces()
    spent = []
    for size in rng.integers(1, 65, size=calls):
        begin = time.perf_counter()
        cam.grad_cam(model, images[:size])
        spent.append(time.perf_counter() - begin)
    grown = _rss_mb() - start_rss
    spent.sort()
    p99 = spent[min(len(spent) - 1, int(0.99 * len(spent)))]
    print(f"\nGrad-CAM, {calls} calls, batch sizes drawn from 1..64 ({_load()}):")
    print(f"  memory growth {grown:+.0f} MB (goal < 50), median {statistics.median(spent) * 1e3:.1f} ms, "
          f"slowest 1 % {p99 * 1e3:.1f} ms, functions compiled {gradients.traces() - start_traces}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls of random batch sizes (memory)")
    parser.add_argument("--repeats", type=int, default=21, help="interleaved repeats for ShapesNet")
    parser.add_argument("--skip-patterns", action="store_true", help="leave out the filter-pattern floor")
    args = parser.parse_args()
    print(f"{gradients.device_summary()} Keras {keras.__version__}, backend {gradients.BACKEND}; {_load()}")
    config.seed_everything(0, deterministic=False)
    rng = np.random.default_rng(0)

    net = models.shapes_convnet(64, widths=(16, 32, 64, 128))
    images = rng.uniform(size=(64, 64, 64, 3)).astype(np.float32)
    methods_against_floors("ShapesNet architecture, 64 images of 64 px", net, images, args.repeats)
    # Before Lite0: its buffers, freed later, would hide growth in the resident size.
    memory_over_calls(net, args.calls)

    lite0 = models.pretrained("efficientnet_lite0")
    photos = rng.uniform(size=(8, 224, 224, 3)).astype(np.float32)
    methods_against_floors("EfficientNet-Lite0, 8 images of 224 px", lite0, photos, max(3, args.repeats // 3))

    if args.skip_patterns:
        return
    count, steps = 32, 30
    patterned = models.shapes_convnet(64, 6, widths=(16, 32, 64, 128))
    target = models.find_layer(patterned, "block3_conv")
    start = rng.uniform(0.4, 0.6, (count, 64, 64, 3)).astype(np.float32)
    floor = pattern_floor(patterned, target, start.shape[1:], steps)
    ours, bare = interleaved([
        lambda: filters.filter_patterns(patterned, target, list(range(count)), steps=steps, batch_size=count,
                                        progress=False),
        lambda: floor(start),
    ], repeats=5, warmup=1)
    print(f"\nFilter patterns, ShapesNet architecture, layer {target.name}, {count} filters, {steps} steps ({_load()})")
    print(f"  filters.filter_patterns {ours:8.2f} s")
    print(f"  floor                   {bare:8.2f} s   ratio {ours / bare:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
