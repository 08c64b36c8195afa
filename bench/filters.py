"""Filter patterns: the batched ascent against the book recipe and against the compute floor.

In one run, for the same filters, steps and image size:

(a) the per-filter loop of *Deep Learning with Python* (a feature-extractor sub-model, one
    GradientTape step function, a Python loop over filters and steps, the filter index passed
    as a Python int, so the step function is traced again for every filter, as in the book);
(a') the same loop with the filter index passed as a tensor (one trace), to separate the cost
    of retracing from the cost of doing filters one at a time;
(b) ``filters.filter_patterns``: all filters in one batch, one compiled program;
(c) the compute floor: for the same batch, one forward and one backward pass per step and
    nothing else, in one compiled loop.

Usage: python bench/filters.py [--repeats N]. Prints seconds (best of N) and ratios.
Timings depend on the machine's load; run it on a quiet machine for numbers to quote.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from convviz_helpers import filters, models  # noqa: E402  (before TensorFlow, which it silences)
from convviz_helpers._tf import keras, tf  # noqa: E402


def book_loop(extractor, filter_indices, steps, size, learning_rate, index_as_tensor):
    """(a)/(a'): Deep Learning with Python's recipe, one filter after another."""

    @tf.function
    def step(image, filter_index):
        with tf.GradientTape() as tape:
            tape.watch(image)
            activation = extractor(image, training=False)
            loss = tf.reduce_mean(activation[:, 2:-2, 2:-2, filter_index])
        grads = tf.math.l2_normalize(tape.gradient(loss, image))
        return tf.clip_by_value(image + learning_rate * grads, 0.0, 1.0)

    images = []
    for index in filter_indices:
        image = tf.random.uniform((1, size, size, 3), 0.4, 0.6, seed=int(index))
        index = tf.constant(index) if index_as_tensor else int(index)
        for _ in range(steps):
            image = step(image, index)
        images.append(image[0].numpy())
    return images


def compute_floor(extractor, batch, steps):
    """(c): ``steps`` forward+backward passes of ``batch`` through ``extractor``, nothing else."""

    @tf.function
    def run(x):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(extractor(x, training=False))
            # Feed the gradient back so the passes form a chain and none can be skipped.
            x = x + tape.gradient(loss, x)
        return x

    run.get_concrete_function(tf.TensorSpec(batch.shape, tf.float32))  # trace outside the timing
    return lambda: run(batch).numpy()


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def case(name, model, layer, count, steps, repeats):
    size = model.input_shape[1]
    extractor = keras.Model(model.inputs, models.find_layer(model, layer).output)
    indices = list(range(count))
    batch = tf.random.uniform((count, size, size, 3), 0.4, 0.6, seed=0)

    def batched():
        filters.filter_patterns(model, layer, indices, steps=steps, batch_size=count, progress=False)

    # Warm up each method once: traces and one-time allocations are not what we compare...
    batched()
    book_loop(extractor, indices[:1], 1, size, 0.03 * (size * size * 3) ** 0.5, True)
    floor = compute_floor(extractor, batch, steps)
    floor()
    # ...except the book loop's retracing per filter, which is part of how the book runs.
    rate = 0.03 * (size * size * 3) ** 0.5  # the same RMS pixel step as filter_patterns
    book_int = best_of(1, lambda: book_loop(extractor, indices, steps, size, rate, False))
    book_tensor = best_of(repeats, lambda: book_loop(extractor, indices, steps, size, rate, True))
    ours = best_of(repeats, batched)
    floor_time = best_of(repeats, floor)
    print(f"\n{name}: layer {layer}, {count} filters, {steps} steps, {size}x{size} images")
    for label, seconds in [("(a) book loop, index as int", book_int),
                           ("(a') book loop, index as tensor", book_tensor),
                           ("(b) filter_patterns, batched", ours),
                           ("(c) compute floor", floor_time)]:
        print(f"  {label:34s} {seconds:7.2f} s   {seconds / floor_time:5.2f}x floor")
    print(f"  batched is {book_int / ours:.1f}x faster than (a), {book_tensor / ours:.1f}x faster than (a')")

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
    keras.utils.set_random_seed(0)
    case("ShapesNet (untrained, widths 16-32-64-128)", models.shapes_convnet(64, 6, widths=(16, 32, 64, 128)),
         "block3_conv", 32, 30, args.repeats)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    case("VGG16 (random weights, 64 px input)", vgg, "block3_conv1", 8, 20, args.repeats)


if __name__ == "__main__":
    main()
