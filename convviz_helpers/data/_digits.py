"""scikit-learn's bundled handwritten digits, upscaled to colour images and split for training."""

from dataclasses import dataclass

import cv2
import numpy as np

from ._arguments import positive_int


@dataclass(frozen=True, eq=False)
class Digits:
    """scikit-learn's handwritten digits, split for training (see ``load_digits``).

    x_train, x_test : (n, S, S, 3) float32 in [0, 1]
    y_train, y_test : (n,) int64 in 0..9
    class_names : list of str, "0" to "9"
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list


def load_digits(image_size=32, seed=0, test_fraction=0.25):
    """scikit-learn's bundled 8x8 digits (1797 images), upscaled for a convnet.

    Pixel values 0..16 are scaled to [0, 1], images are bilinearly resized to
    (image_size, image_size) and the grey channel is repeated three times. The split is
    stratified (every digit in the same proportion in both parts) and fixed by ``seed``.

    Returns
    -------
    Digits
        ``x_train``/``x_test`` (n,S,S,3) float32 in [0,1], ``y_train``/``y_test`` (n,) int64,
        ``class_names`` ["0", ..., "9"].
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    size = positive_int(image_size, "image_size", minimum=8)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}.")
    digits = sklearn_digits()
    small = digits.images.astype(np.float32) / 16.0
    # 1797 resizes of an 8x8 image take a few milliseconds.
    large = np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR) for img in small])
    images = np.repeat(large[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    return Digits(x_train, y_train, x_test, y_test, [str(d) for d in range(10)])
