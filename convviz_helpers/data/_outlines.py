"""The shapes dataset's six classes as outlines, and the object masks drawn from them.

Each class is an implicit function on coordinates (u, v) that are already rotated and scaled
so the whole shape fits inside the unit disk; True means "inside the shape".
"""

import numpy as np


def _circle(u, v):
    return u * u + v * v <= 1.0


def _square(u, v):
    # Half-side 0.7 keeps the corners (0.7 * sqrt 2 = 0.99) inside the unit disk.
    return np.maximum(np.abs(u), np.abs(v)) <= 0.7


def _half_plane_count(u, v, normal_angles, offset):
    """How many of the half-planes ``n . (u, v) <= offset`` contain each point."""
    count = np.zeros(u.shape, np.int8)
    for angle in normal_angles:
        count += (u * np.cos(angle) + v * np.sin(angle)) <= offset
    return count


def _triangle(u, v):
    # Equilateral, vertices on the unit circle: its edges lie at distance 1/2 from the centre.
    normals = np.pi / 2 + np.pi / 3 + 2 * np.pi / 3 * np.arange(3)
    return _half_plane_count(u, v, normals, 0.5) == 3


def _star(u, v):
    # A filled pentagram is bounded by five lines at distance cos(72 deg) from the centre: the
    # inner pentagon satisfies all five half-planes and each point of the star violates one.
    normals = np.pi / 2 + 2 * np.pi / 5 * np.arange(5)
    return _half_plane_count(u, v, normals, np.cos(2 * np.pi / 5)) >= 4


def _cross(u, v):
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))


def _ring(u, v):
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.55**2)


_SHAPES = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "ring": _ring,
}
SHAPE_CLASSES = tuple(_SHAPES)


def render_masks(p, size):
    """The object masks (c, S, S) bool, from the drawn parameters ``p``: ``label`` (c,) index
    into ``SHAPE_CLASSES``, ``center`` (c, 2) as (y, x) pixels, ``radius`` (c,) pixels,
    ``angle`` (c,) radians."""
    centers = np.arange(size) + 0.5
    dy = centers[None, :, None] - p["center"][:, 0, None, None]
    dx = centers[None, None, :] - p["center"][:, 1, None, None]
    cos = (np.cos(p["angle"]) / p["radius"])[:, None, None]
    sin = (np.sin(p["angle"]) / p["radius"])[:, None, None]
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    masks = np.zeros(u.shape, bool)
    for label, shape in enumerate(_SHAPES.values()):
        chosen = p["label"] == label
        if chosen.any():
            masks[chosen] = shape(u[chosen], v[chosen])
    return masks
