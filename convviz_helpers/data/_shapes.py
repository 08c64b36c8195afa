"""The procedural shapes dataset: one coloured shape per image on a textured background, with
the exact pixel mask of the object, so a heatmap can be scored against where the object is.

``make_shapes`` draws every random choice up front (geometry here, background and clutter in
``_backgrounds``), then renders chunk by chunk: background, mask (``_outlines``), a colour that
stands out, the object painted in it.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from . import _backgrounds
from ._arguments import positive_int
from ._outlines import SHAPE_CLASSES, render_masks

_RADIUS_RANGE = (0.15, 0.30)  # object radius as a fraction of the image side
_EDGE_GAP = 2.0  # pixels kept free between the object and the image border
_CANDIDATES = 16  # colour candidates per image; the first distinct enough one is used
_MIN_COLOR_DISTANCE = 0.35  # RGB distance from the background mean under the object
_MIN_CLUTTER_DISTANCE = 0.25  # RGB distance from every clutter colour of the image


@dataclass(frozen=True, eq=False)
class Shapes:
    """A shapes dataset (see ``make_shapes``).

    images : (n, S, S, 3) float32 in [0, 1]
    labels : (n,) int64, indices into ``class_names``
    masks : (n, S, S) bool, True exactly on the object's pixels
    colors : (n, 3) float32, the object's flat colour (every masked pixel has it)
    class_names : list of str
    backgrounds : (n, S, S, 3) float32, each image without its object, or None
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    colors: np.ndarray
    class_names: list
    backgrounds: np.ndarray = None

    def __len__(self):
        return len(self.labels)


def make_shapes(n, image_size=64, seed=0, clutter=True, return_backgrounds=False):
    """Coloured shapes on textured backgrounds, one object per image, with its exact mask.

    Each image holds one shape of ``SHAPE_CLASSES`` with random flat colour, size (radius 15 to
    30 % of the side), rotation and position (always fully inside, at least 2 px from the
    border), drawn with hard edges. Backgrounds are random crops (random zoom and flips) of
    scikit-image's bundled textures and photos, toned down in contrast and tinted. With
    ``clutter``, small strokes and dots that belong to no class are drawn under the object.
    The object colour is kept at least 0.35 (RGB distance) from the mean background under it
    and away from the clutter colours, so every image is solvable. Classes are balanced.

    Parameters
    ----------
    n : int >= 1
        Number of images.
    image_size : int >= 32
        Side S of the square images.
    seed : int
        The same (n, image_size, seed, clutter) gives the same data; another seed, other data.
    clutter : bool
        Draw distracting strokes and dots.
    return_backgrounds : bool
        Also keep each image without its object in ``.backgrounds`` (twice the memory).

    Returns
    -------
    Shapes
        ``.images`` (n,S,S,3) float32 in [0,1], ``.labels`` (n,) int64, ``.masks`` (n,S,S)
        bool, ``.colors`` (n,3) float32, ``.class_names`` list of str, ``.backgrounds``.
    """
    n = positive_int(n, "n", minimum=1)
    size = positive_int(image_size, "image_size", minimum=32)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    params = _draw_parameters(n, size, np.random.default_rng(int(seed)), bool(clutter))
    sources = _backgrounds.background_sources(size)

    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    colors = np.empty((n, 3), np.float32)
    backgrounds = np.empty_like(images) if return_backgrounds else None
    # A few MB of temporaries per chunk; OpenCV's remap also needs chunk * size < 32767 rows.
    chunk = max(1, min(2**20 // size**2, 2**14 // size))
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        p = {key: value[part] for key, value in params.items()}
        image = images[part]
        _backgrounds.render_background(p, sources, out=image)
        if return_backgrounds:
            backgrounds[part] = image
        masks[part] = mask = render_masks(p, size)
        colors[part] = color = _choose_colors(p, image, mask)
        np.copyto(image, color[:, None, None, :], where=mask[..., None])
    return Shapes(images, params["label"], masks, colors, list(SHAPE_CLASSES), backgrounds)


def _draw_parameters(n, size, rng, clutter):
    """Every random choice for all n images, drawn up front so chunking cannot change them.
    The order of the draws fixes the data a seed gives: keep it."""
    k = len(SHAPE_CLASSES)
    p = {"label": rng.permutation(np.arange(n) % k).astype(np.int64)}

    radius = size * rng.uniform(*_RADIUS_RANGE, n)
    low = radius + _EDGE_GAP
    p["radius"] = radius
    p["center"] = low[:, None] + rng.uniform(size=(n, 2)) * (size - 2 * low)[:, None]  # (y, x)
    p["angle"] = rng.uniform(0, 2 * np.pi, n)
    p.update(_backgrounds.draw_parameters(n, size, rng, clutter))
    p["candidates"] = rng.uniform(size=(n, _CANDIDATES, 3))
    return p


def _choose_colors(p, background, mask):
    """Per image, the first colour candidate far enough from the background mean under the
    mask and from the image's clutter colours; the most distant candidate if none is."""
    count, size = mask.shape[:2]
    weights = mask.reshape(count, 1, size * size).astype(np.float32)
    under = (weights @ background.reshape(count, size * size, 3))[:, 0] / weights.sum(axis=2)
    candidates = p["candidates"]
    to_background = np.linalg.norm(candidates - under[:, None, :], axis=-1)
    to_clutter = np.linalg.norm(candidates[:, :, None, :] - p["clutter_color"][:, None, :, :], axis=-1)
    to_clutter = np.where(p["clutter_on"][:, None, :], to_clutter, np.inf).min(axis=-1)
    good = (to_background >= _MIN_COLOR_DISTANCE) & (to_clutter >= _MIN_CLUTTER_DISTANCE)
    best = np.where(good.any(axis=1), good.argmax(axis=1), to_background.argmax(axis=1))
    return candidates[np.arange(count), best].astype(np.float32)
