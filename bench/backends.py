"""Grad-CAM and filter patterns against their compute floor, on this process's Keras backend.

Run once per backend (Keras fixes it per process):

    KERAS_BACKEND=tensorflow .venv/bin/python bench/backends.py
    KERAS_BACKEND=jax        .venv/bin/python bench/backends.py

The floors are written with the backend's own compile and gradient (through the seam of
``convviz_helpers.gradients``, which is a thin wrapper: ``tf.function`` + ``GradientTape``, or
``jax.jit`` + ``jax.value_and_grad``), and nothing else:

- Grad-CAM floor: one compiled, batched forward pass and backward pass to the layer (the
  gradient of each image's top score with respect to the layer's output), no input checks,
  class resolution, weighting, upsampling or normalising;
- filter-pattern floor: ``steps`` forward and backward passes of the same batch through the
  model up to the layer, in one compiled loop, no gathering, normalising or clipping.

Prints the median seconds of several runs and the ratio to the floor (goal: <= 1.3x on every
backend). Timings depend on machine load: compare ratios from one run, not seconds.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from convviz_helpers import cam, config, filters, gradients, models  # noqa: E402
from convviz_helpers._tf import keras  # noqa: E402
from timing import interleaved  # noqa: E402

ops = keras.ops


def grad_cam_floor(model, layer, shape):
    def run(images):
        def forward(x, taps):
            with gradients.recording([layer], taps=taps) as records:
                scores = model(x, training=False)
            return ops.sum(ops.max(scores, axis=-1)), (), [records[0][0]]

        _, activations, grads, _ = gradients.backend.gradients(forward, images, False)
        return activations[0], grads[0]

    compiled = gradients.compile(model, run, [((None, *shape), "float32")])
    return lambda images: [np.asarray(part) for part in compiled(images)]


def pattern_floor(model, layer, shape, steps):
    extractor = keras.Model(model.inputs, layer.output)
    step_gradient = gradients.value_and_gradient(
        lambda x: ops.sum(ops.reshape(extractor(x, training=False), (ops.shape(x)[0], -1)), axis=1))

    def run(x):
        # Feed the gradient back so the passes form a chain and none can be skipped.
        return ops.fori_loop(0, steps, lambda i, x: x + step_gradient(x)[1], x)

    compiled = gradients.compile(extractor, run, [((None, *shape), "float32")])
    return lambda images: np.asarray(compiled(images))


def report_grad_cam(what, model, layer, images, repeats):
    """Print ``cam.grad_cam`` against its floor on ``images``, timed in turns."""
    floor = grad_cam_floor(model, layer, images.shape[1:])
    ours, bare = interleaved([lambda: cam.grad_cam(model, images), lambda: floor(images)], repeats=repeats)
    print(f"\nGrad-CAM, {what}, layer {layer.name}")
    print(f"  cam.grad_cam        {ours * 1e3:8.1f} ms")
    print(f"  floor               {bare * 1e3:8.1f} ms   ratio {ours / bare:.2f} (goal <= 1.3)")


def main():
    print(f"{gradients.device_summary()} Keras {keras.__version__}, backend {gradients.BACKEND}; "
          f"load average {os.getloadavg()[0]:.1f}")
    config.seed_everything(0, deterministic=False)
    rng = np.random.default_rng(0)

    model = models.shapes_convnet(64, widths=(16, 32, 64, 128))
    layer = models.last_conv_layer(model)
    images = rng.uniform(size=(64, 64, 64, 3)).astype(np.float32)
    report_grad_cam("ShapesNet architecture, 64 images of 64 px", model, layer, images, repeats=21)

    lite0 = models.pretrained("efficientnet_lite0")
    layer = models.last_conv_layer(lite0)
    photos = rng.uniform(size=(8, 224, 224, 3)).astype(np.float32)
    report_grad_cam("EfficientNet-Lite0, 8 images of 224 px", lite0, layer, photos, repeats=7)

    count, steps = 32, 30
    net = models.shapes_convnet(64, 6, widths=(16, 32, 64, 128))
    target = models.find_layer(net, "block3_conv")
    start = rng.uniform(0.4, 0.6, (count, 64, 64, 3)).astype(np.float32)
    floor = pattern_floor(net, target, start.shape[1:], steps)
    ours, bare = interleaved([
        lambda: filters.filter_patterns(net, target, list(range(count)), steps=steps, batch_size=count,
                                        progress=False),
        lambda: floor(start),
    ], repeats=5, warmup=1)
    print(f"\nFilter patterns, ShapesNet architecture, layer {target.name}, {count} filters, {steps} steps")
    print(f"  filters.filter_patterns {ours:8.2f} s")
    print(f"  floor                   {bare:8.2f} s   ratio {ours / bare:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
