"""A shapes dataset with a shortcut: one class is always drawn in one colour.

A model trained on it can reach high accuracy by reading the colour instead of the shape. The
colour-swapped version of the same images (the shortcut class in other colours, every other
class in the shortcut colour) is the test that tells the two apart: a model that learned the
shape keeps its answers, a model that learned the colour follows the paint.

Both sets are the images of ``data.make_shapes`` (same shapes, positions and backgrounds for
the same seed) with each object repainted, so nothing but the colour differs between a set and
its swapped version.
"""

import numbers

import numpy as np

from . import data

SHORTCUT_CLASS = "circle"
SHORTCUT_COLOUR = (0.9, 0.1, 0.1)  # red
# Every other object's colour is at least this far (RGB distance) from the shortcut colour, so
# "drawn in the shortcut colour" is a property a model can read exactly.
MIN_DISTANCE = 0.5
_CANDIDATES = 16  # colour candidates per object; the first far enough is used


def make_shortcut_shapes(n, image_size=32, seed=0, *, shortcut_class=SHORTCUT_CLASS,
                         colour=SHORTCUT_COLOUR, swapped=False):
    """Shapes in which ``shortcut_class`` is always drawn in ``colour``, or the swapped set.

    Parameters
    ----------
    n : int >= 1
        Number of images (classes balanced, as ``data.make_shapes``).
    image_size : int >= 32
        Side of the square images.
    seed : int
        The same arguments give the same images; ``swapped=True`` with the same ``n``,
        ``image_size`` and ``seed`` gives the same shapes on the same backgrounds, repainted.
    shortcut_class : str
        One of ``data.SHAPE_CLASSES``.
    colour : three floats in [0, 1]
        The shortcut colour (RGB).
    swapped : bool
        False: every ``shortcut_class`` object has exactly ``colour`` and every other object a
        colour at least ``MIN_DISTANCE`` from it. True: the other way round.

    Returns
    -------
    data.Shapes
        ``.images`` (n, S, S, 3) float32 in [0, 1], ``.labels`` (n,), ``.masks`` (n, S, S)
        bool, ``.colors`` (n, 3) float32 (each object's flat colour), ``.class_names``,
        ``.backgrounds`` (n, S, S, 3): each image without its object.

    Raises
    ------
    ValueError
        For an unknown class, a colour that is not three numbers in [0, 1], or what
        ``data.make_shapes`` rejects (n < 1, image_size < 32, a seed that is not an integer).
    """
    if shortcut_class not in data.SHAPE_CLASSES:
        raise ValueError(f"shortcut_class must be one of {', '.join(data.SHAPE_CLASSES)}; got {shortcut_class!r}.")
    shortcut = _colour(colour)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    base = data.make_shapes(n, image_size=image_size, seed=seed, return_backgrounds=True)
    # Colours for the objects that must avoid the shortcut colour, from a stream of their own, so
    # the shapes and backgrounds stay those of make_shapes with the same seed.
    other = _distant_colours(len(base), shortcut, np.random.default_rng([int(seed), 0x5C07]))
    in_class = base.labels == data.SHAPE_CLASSES.index(shortcut_class)
    painted = in_class != bool(swapped)  # the objects drawn in the shortcut colour
    colours = np.where(painted[:, None], shortcut[None, :], other).astype(np.float32)
    images = np.where(base.masks[..., None], colours[:, None, None, :], base.backgrounds).astype(np.float32)
    return data.Shapes(images, base.labels, base.masks, colours, base.class_names, base.backgrounds)


def _colour(colour):
    """``colour`` as a float32 (3,) array in [0, 1], or a ValueError saying what was wrong."""
    try:
        value = np.asarray(colour, dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.shape != (3,) or not np.isfinite(value).all() or value.min() < 0 or value.max() > 1:
        raise ValueError(f"colour must be three RGB values in [0, 1], such as (0.9, 0.1, 0.1); got {colour!r}.")
    return value.astype(np.float32)


def _distant_colours(n, shortcut, rng):
    """(n, 3) float32 colours, each at least ``MIN_DISTANCE`` from ``shortcut``: the first of
    ``_CANDIDATES`` uniform candidates that is far enough, else the cube corner farthest from
    ``shortcut`` (at least 0.87 away, so the rule always holds)."""
    candidates = rng.uniform(size=(n, _CANDIDATES, 3)).astype(np.float32)
    far = np.linalg.norm(candidates - shortcut, axis=-1) >= MIN_DISTANCE
    corner = (shortcut < 0.5).astype(np.float32)
    chosen = candidates[np.arange(n), far.argmax(axis=1)]
    return np.where(far.any(axis=1)[:, None], chosen, corner[None, :])
