"""Exercise 2: one gradient-ascent step with the gradient normalised per image, as ``filters`` steps."""

import numpy as np

from ._common import _as_array, _call, _fail, _is_input, _no_nan


# The constant the book's filter ascent adds to the per-image RMS so a zero gradient is no step.
ASCENT_EPSILON = 1e-12


def _reference_ascent_step(images, grads, step_size):
    """The step ``filters`` takes inside its compiled ascent, in numpy: each image moves along
    its own gradient divided by that gradient's root-mean-square, then pixels are clipped."""
    rms = np.sqrt(np.mean(np.square(grads), axis=(1, 2, 3), keepdims=True))
    return np.clip(images + step_size * grads / (rms + ASCENT_EPSILON), 0.0, 1.0)


def _ascent_case():
    """Images and gradients whose scales differ by 10^5 between images, one of them zero."""
    rng = np.random.default_rng(22)
    images = rng.uniform(0.0, 1.0, (4, 8, 8, 3)).astype(np.float32)
    grads = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    grads *= np.array([1e-3, 1.0, 1e2, 0.0], np.float32)[:, None, None, None]
    return images, grads, 0.05


def check_ascent_step(fn):
    """Grade ``fn(images, gradients, step_size) -> images``: images (n, H, W, C) in [0, 1], each
    moved by ``step_size`` × its gradient / the RMS of its gradient, then clipped to [0, 1]."""
    __tracebackhide__ = True
    images, grads, step = _ascent_case()
    given = (images.copy(), grads.copy())
    result = _as_array(_call(fn, *given, step), "the stepped images")
    if not (np.array_equal(given[0], images) and np.array_equal(given[1], grads)):
        _fail("your function changed its input arrays in place; return new images instead "
              "(the caller may still need the old ones).")
    if _is_input(result, given):
        _fail("you returned the input array itself; return a new array of stepped images.")
    if result.shape != images.shape:
        _fail(f"wrong shape: expected {images.shape} (the images' shape), got {result.shape}.")
    _no_nan(result, "one image's gradient is all zero, so its RMS is 0; add a small epsilon "
            f"(the book uses {ASCENT_EPSILON:g}) so a zero gradient means no step.")
    expected = _reference_ascent_step(images, grads, step)
    if np.allclose(result, expected, atol=1e-5):
        print(f"✓ ascent_step matches the reference on {len(images)} images whose gradients differ by 10^5 in scale")
        return
    if result.min() < -1e-6 or result.max() > 1 + 1e-6:
        _fail("pixels left [0, 1]: clip the stepped images to [0, 1] (the model takes images in [0, 1]).")
    downhill = _reference_ascent_step(images, -grads, step)
    if np.allclose(result, downhill, atol=1e-5):
        _fail("you stepped downhill: gradient *ascent* adds step_size × the normalised gradient.")
    whole = np.sqrt(np.mean(np.square(grads)))
    if np.allclose(result, np.clip(images + step * grads / (whole + ASCENT_EPSILON), 0, 1), atol=1e-5):
        _fail("you normalised the gradient across the batch: one image's large gradient then shrinks "
              "every other image's step. Take the RMS per image (axis=(1, 2, 3), keepdims=True).")
    if np.allclose(result, np.clip(images + step * grads, 0, 1), atol=1e-5):
        _fail("the gradient is not normalised: divide each image's gradient by its own RMS, so every "
              "image moves by about step_size however strongly its target responds.")
    length = np.sqrt(np.sum(np.square(grads), axis=(1, 2, 3), keepdims=True))
    if np.allclose(result, np.clip(images + step * grads / (length + ASCENT_EPSILON), 0, 1), atol=1e-5):
        _fail("you divided by the L2 norm of each gradient: the step then shrinks with the image size. "
              "Divide by the root-mean-square instead, so each pixel moves by about step_size.")
    worst = float(np.abs(result - expected).max())
    _fail(f"your step differs from the reference by up to {worst:.3g} per pixel.")
