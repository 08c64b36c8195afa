"""How close are occlusion, RISE and integrated gradients to their compute floor? One run.

Each method's cost is a number of passes through the model, so its floor is exactly those
passes and nothing else: the perturbed copies built beforehand (outside the timing) and sent
through one compiled forward in a batched loop with the same batch size (occlusion, RISE), or
the ``steps + 1`` path points through one compiled forward + backward (integrated gradients).
The ratio method / floor is what building copies in numpy, choosing scores and averaging maps
add. ShapesNet (trained, 64 px) and EfficientNet-Lite0 (224 px, offline weights), on whichever
Keras backend ``KERAS_BACKEND`` names. Run: ``.venv/bin/python bench/perturbation.py``.
Timings depend on machine load (printed): compare ratios from one run, not seconds.
"""

import os

import numpy as np
from timing import interleaved

from convviz_helpers import cam, data, gradients, models, perturbation
from convviz_helpers._tf import keras
from convviz_helpers.integrated_gradients import trapezoid_weights


def forward_floor(model, copies, batch_size):
    """A function that sends ``copies`` through one compiled forward, ``batch_size`` at a time."""
    run = gradients.compile(model, lambda batch: model(batch, training=False), [gradients.image_spec(model)])
    return lambda: [np.asarray(run(copies[i:i + batch_size])) for i in range(0, len(copies), batch_size)]


def gradient_floor(model, points, classes, batch_size):
    """A function that takes the input gradient of each point's class logit, ``batch_size`` at a
    time, through one compiled forward + backward."""

    def logit(x, wanted):
        return gradients.select(model(x, training=False), wanted)

    step = gradients.value_and_gradient(logit)
    run = gradients.compile(model, step, [gradients.image_spec(model), ((None,), "int32")])
    return lambda: [np.asarray(run(points[i:i + batch_size], classes[i:i + batch_size])[1])
                    for i in range(0, len(points), batch_size)]


def report(what, model, images, occlusion, rise_masks, steps, repeats):
    n, pixels = len(images), int(np.prod(images.shape[1:]))
    per_call = max(1, perturbation._VALUES_PER_CALL // pixels)
    base = np.zeros_like(images)
    windows = perturbation.occlusion_windows(images.shape[1:3], **occlusion)
    keep = (~windows).astype(np.float32)[None, ..., None]
    occluded = (images[:, None] * keep + base[:, None] * (1 - keep)).reshape(-1, *images.shape[1:])
    masks = perturbation.rise_masks(images.shape[1:3], rise_masks)[None, ..., None]
    masked = (images[:, None] * masks).reshape(-1, *images.shape[1:])
    alphas, _ = trapezoid_weights(steps)
    path = (alphas[None, :, None, None, None] * images[:, None]).reshape(-1, *images.shape[1:])
    classes = np.repeat(gradients.resolve_classes(model, images), steps + 1)
    contenders = [
        ("occlusion", f"{len(occluded) + n} forward", lambda: cam.occlusion(model, images, **occlusion),
         forward_floor(model, occluded, per_call)),
        ("RISE", f"{len(masked)} forward", lambda: cam.rise(model, images, masks=rise_masks),
         forward_floor(model, masked, per_call)),
        ("integrated gradients", f"{len(path)} forward + backward",
         lambda: cam.integrated_gradients(model, images, steps=steps),
         gradient_floor(model, path, classes, per_call)),
    ]
    print(f"\n{what}, {n} images of {images.shape[1]} px, {per_call} copies per compiled call")
    for name, passes, ours, floor in contenders:
        mine, bare = interleaved([ours, floor], repeats=repeats, warmup=1)
        print(f"  {name:<21} {mine:7.2f} s   floor ({passes}) {bare:7.2f} s   ratio {mine / bare:.2f}")


def main():
    print(f"{gradients.device_summary()} Keras {keras.__version__}, backend {gradients.BACKEND}; "
          f"1-min load average {os.getloadavg()[0]:.1f}")
    shapes = data.make_shapes(8, seed=404).images
    report("ShapesNet (trained)", models.shapes_model(), shapes, dict(window=8, stride=4), 250, 32, repeats=3)
    photos = np.stack([data.sample_image(name, 224) for name in ("chelsea", "coffee")])
    report("EfficientNet-Lite0", models.pretrained("efficientnet_lite0"), photos, dict(window=56, stride=28), 50, 16,
           repeats=3)
    print(f"\n1-min load average at the end: {os.getloadavg()[0]:.1f} (other jobs share the CPU: ratios are noisy)")


if __name__ == "__main__":
    main()
