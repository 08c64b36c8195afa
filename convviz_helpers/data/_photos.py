"""The photos that scikit-image and scikit-learn ship (offline), loaded, cropped and resized.

Every photo comes out as (H, W, 3) float32 in [0, 1]: grey ones repeated to three channels,
the logo's alpha dropped.
"""

import functools
import numbers

import cv2
import numpy as np

from ._arguments import positive_int

SAMPLE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon",
    "retina", "rocket", "china", "flower",
)
# The last two ship with scikit-learn (sklearn.datasets.load_sample_image), the rest with
# scikit-image.
# scikit-image names one photo twice ("cat" is "chelsea"): pools of crops use each photo once.
DISTINCT_SAMPLE_IMAGES = tuple(name for name in SAMPLE_IMAGES if name != "cat")
_SKLEARN_IMAGES = {"china": "china.jpg", "flower": "flower.jpg"}


@functools.lru_cache(maxsize=None)
def load_sample(name):
    """A bundled photo as a read-only (H, W, 3) float32 array in [0, 1], at its native size;
    ``name`` already lower-case and valid (``sample_image`` checks it)."""
    if name in _SKLEARN_IMAGES:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(_SKLEARN_IMAGES[name])
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3], dtype=np.float32) / 255.0
    image.setflags(write=False)
    return image


def sample_image(name, size=None):
    """One of the photos scikit-image and scikit-learn ship (offline), as (H, W, 3) float32 in [0, 1].

    Parameters
    ----------
    name : str
        One of ``SAMPLE_IMAGES`` (case-insensitive); ``"cat"`` is the same photo as
        ``"chelsea"``; ``"china"`` (a Chinese palace) and ``"flower"`` come from
        scikit-learn. Grey images are repeated to three channels; the logo's alpha is dropped.
    size : None, int or (h, w)
        None keeps the native size. Otherwise the largest centred window with the target aspect
        ratio is cropped (so nothing is stretched) and resized to (size, size) or (h, w), with
        area averaging when shrinking and bicubic interpolation when enlarging.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad size.
    """
    key = str(name).strip().lower()
    if key not in SAMPLE_IMAGES:
        raise ValueError(f"Unknown sample image {name!r}; valid names are {', '.join(SAMPLE_IMAGES)}.")
    image = load_sample(key)
    if size is None:
        return image.copy()
    if isinstance(size, numbers.Integral):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be None, an int or an (h, w) pair, got {size!r}.")
    height, width = (positive_int(s, "size", minimum=1) for s in size)
    return crop_resize(image, height, width)


def crop_resize(image, height, width):
    """Center-crop ``image`` (H, W, 3) float32 in [0, 1] to the aspect ratio height:width, then
    resize it to (height, width, 3), still in [0, 1]."""
    h, w = image.shape[:2]
    crop_h, crop_w = min(h, round(w * height / width)), min(w, round(h * width / height))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = image[top : top + crop_h, left : left + crop_w]
    shrinking = height * width <= crop_h * crop_w
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.clip(resized, 0, 1, out=resized)
