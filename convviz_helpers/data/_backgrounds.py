"""The shapes dataset's backgrounds: crops of bundled textures and photos, toned down and
tinted, with clutter (strokes and dots that belong to no class) painted on them.

``draw_parameters`` makes every random choice for a batch up front; ``render_background``
turns a chunk of those choices into (c, S, S, 3) float32 images in [0, 1].
"""

import functools

import cv2
import numpy as np

from ._photos import crop_resize, load_sample

# Photos and textures that ship inside scikit-image (no download), used as backgrounds.
_BACKGROUND_SOURCES = (
    "brick", "grass", "gravel", "camera", "coins", "moon", "coffee", "chelsea",
    "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
)
_MAX_SOURCE_SIDE = 1024  # OpenCV's remap needs the stacked sources under 32767 rows
_CLUTTER_SLOTS = 5  # at most this many strokes/dots per image
_MAX_STROKE = 0.3  # longest clutter stroke, as a fraction of the image side
_MAX_PEN = 2.2  # largest clutter dot radius, in pixels of a 64 px image


def draw_parameters(n, size, rng, clutter):
    """The background and clutter choices for n images of side ``size`` from ``rng``, as a dict
    of arrays with n first (source index, crop window, flips, tone, tint; clutter capsules and
    their colours). ``clutter`` False draws the same numbers but switches every capsule off."""
    p = {}
    # Which source, a square window on it (side as a fraction of the source side; sources are
    # 2S wide, so the zoom runs from 0.75x to 2x), flips and tone.
    p["source"] = rng.integers(len(_BACKGROUND_SOURCES), size=n)
    extent = rng.uniform(0.375, 1.0, n)
    p["extent"] = extent
    p["corner"] = rng.uniform(size=(n, 2)) * (1 - extent)[:, None]
    p["flip"] = rng.integers(2, size=(n, 2)).astype(bool)
    p["contrast"] = rng.uniform(0.25, 0.5, n)
    p["brightness"] = rng.uniform(0.3, 0.7, n)
    p["tint"] = rng.uniform(0.8, 1.2, (n, 3))

    # Clutter: capsules (a segment drawn with a round pen); length 0 makes a dot.
    slots = (n, _CLUTTER_SLOTS)
    p["clutter_on"] = rng.uniform(size=slots) < (0.6 if clutter else 0.0)
    is_dot = rng.uniform(size=slots) < 0.5
    start = rng.uniform(0, size, slots + (2,))
    length = np.where(is_dot, 0.0, size * rng.uniform(0.12, _MAX_STROKE, slots))
    direction = rng.uniform(0, 2 * np.pi, slots)
    p["clutter_start"] = start
    p["clutter_end"] = start + length[..., None] * np.stack([np.sin(direction), np.cos(direction)], -1)
    pen = np.where(is_dot, rng.uniform(1.0, _MAX_PEN, slots), rng.uniform(0.6, 1.2, slots))
    p["clutter_width"] = pen * size / 64
    p["clutter_color"] = rng.uniform(size=slots + (3,))
    return p


def background_sources(size):
    """The sources for images of side ``size``: read-only (m * side, side, 3) float32."""
    return _stacked_sources(min(2 * size, _MAX_SOURCE_SIDE))


@functools.lru_cache(maxsize=4)
def _stacked_sources(side):
    """The background photos stacked vertically: (m * side, side, 3) float32 in [0, 1].

    Each is center-cropped to a square and area-resized once per process; grey ones are
    repeated to RGB (the per-image tint colours them). Stacking lets one ``cv2.remap`` call
    sample a whole chunk of crops from any of them.
    """
    stack = np.concatenate([crop_resize(load_sample(name), side, side) for name in _BACKGROUND_SOURCES])
    stack.setflags(write=False)
    return stack


def render_background(p, sources, out):
    """Write bilinear crops of the sources, toned down, tinted, with clutter, into ``out``
    (c, S, S, 3) float32; ``p`` holds the chunk's c rows of ``draw_parameters``."""
    count, size, side = out.shape[0], out.shape[1], sources.shape[1]
    steps = (np.arange(size) + 0.5) / size
    extent = p["extent"][:, None]
    # Sample positions in source pixels; a flip runs the steps backwards. Clipping to the
    # source keeps bilinear sampling from reading the neighbouring source in the stack.
    ys = side * (p["corner"][:, :1] + extent * np.where(p["flip"][:, :1], 1 - steps, steps)) - 0.5
    xs = side * (p["corner"][:, 1:] + extent * np.where(p["flip"][:, 1:], 1 - steps, steps)) - 0.5
    ys = np.clip(ys, 0, side - 1) + (side * p["source"])[:, None]
    xs = np.clip(xs, 0, side - 1)
    map_y = np.broadcast_to(ys[:, :, None], (count, size, size)).reshape(count * size, size)
    map_x = np.broadcast_to(xs[:, None, :], (count, size, size)).reshape(count * size, size)
    cv2.remap(sources, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
              dst=out.reshape(count * size, size, 3))

    # Contrast and tint as one multiply-add per pixel: (b + c (x - mean)) * t.
    mean = out.mean(axis=(1, 2, 3))
    gain = p["contrast"][:, None] * p["tint"]
    offset = (p["brightness"] - p["contrast"] * mean)[:, None] * p["tint"]
    out *= gain.astype(np.float32)[:, None, None, :]
    out += offset.astype(np.float32)[:, None, None, :]
    np.clip(out, 0, 1, out=out)
    _draw_clutter(out, p)


def _draw_clutter(background, p):
    """Paint each active capsule in its colour, slot after slot, into ``background`` in place.

    Only a window around each capsule is evaluated, which is what keeps this cheap.
    """
    size = background.shape[1]
    window = int(np.ceil(size * (_MAX_STROKE + 2 * _MAX_PEN / 64))) + 2
    offsets = np.arange(window)
    for slot in range(_CLUTTER_SLOTS):
        images = np.flatnonzero(p["clutter_on"][:, slot])
        if images.size == 0:
            continue
        a = p["clutter_start"][images, slot]  # (k, 2) as (y, x)
        b = p["clutter_end"][images, slot]
        pen = p["clutter_width"][images, slot]
        corner = np.floor(np.minimum(a, b) - pen[:, None]).astype(np.int64)
        rows = corner[:, :1] + offsets  # (k, window) pixel indices
        cols = corner[:, 1:] + offsets
        py, px = (rows + 0.5)[:, :, None], (cols + 0.5)[:, None, :]
        ay, ax = a[:, 0, None, None], a[:, 1, None, None]
        dy, dx = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]
        # Closest point of the segment to each pixel centre, then the distance to it.
        t = np.clip(((py - ay) * dy + (px - ax) * dx) / np.maximum(dy * dy + dx * dx, 1e-9), 0, 1)
        hit = (py - ay - t * dy) ** 2 + (px - ax - t * dx) ** 2 <= pen[:, None, None] ** 2
        hit &= ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
        k, r, c = np.nonzero(hit)
        background[images[k], rows[k, r], cols[k, c]] = p["clutter_color"][images[k], slot]
