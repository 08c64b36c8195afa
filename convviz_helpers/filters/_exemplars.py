"""Dataset examples: a pool of square crops of the bundled photos, described by boxes
(photo, y, x, side) so that an atlas ships a few integers per example instead of pixels."""

import cv2
import numpy as np

from .. import data


def crop_boxes(fractions, stride):
    """Every crop of the pool as an int32 array (n, 4) of (photo index in
    ``data.SAMPLE_IMAGES``, top, left, side) in the photo's native pixels: squares of side
    ``fraction`` times the photo's shorter side, for each fraction, on a grid with step
    ``stride`` times the side, the grid centred so the margins are equal. Each distinct photo
    once (``data.DISTINCT_SAMPLE_IMAGES``), so no crop appears twice among a channel's examples."""
    boxes = []
    for index, name in enumerate(data.SAMPLE_IMAGES):
        if name not in data.DISTINCT_SAMPLE_IMAGES:
            continue
        height, width = data.sample_image(name).shape[:2]
        for fraction in fractions:
            side = max(8, int(round(fraction * min(height, width))))
            step = max(1, int(round(stride * side)))
            ys = np.arange(0, height - side + 1, step)
            xs = np.arange(0, width - side + 1, step)
            ys = ys + (height - side - ys[-1]) // 2
            xs = xs + (width - side - xs[-1]) // 2
            grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)
            boxes.append(np.column_stack([np.full(len(grid), index), grid, np.full(len(grid), side)]))
    return np.concatenate(boxes).astype(np.int32)


def crop_pixels(boxes, size):
    """The crops that ``boxes`` (..., 4) describe, as float32 (..., size, size, 3) in [0, 1]
    (area averaging when shrinking, bilinear when enlarging)."""
    boxes = np.asarray(boxes, dtype=np.int64)
    flat = boxes.reshape(-1, 4)
    out = np.empty((len(flat), size, size, 3), np.float32)
    photos = {}
    for i, (photo, top, left, side) in enumerate(flat):
        if photo not in photos:
            photos[photo] = data.sample_image(data.SAMPLE_IMAGES[photo])
        window = photos[photo][top:top + side, left:left + side]
        shrink = side > size
        out[i] = cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).reshape(*boxes.shape[:-1], size, size, 3)


def top_examples(scores, boxes, count):
    """Per channel, the indices (k, count) of the crops with the highest ``scores`` (n, k),
    best first, skipping a crop that overlaps an already chosen crop of the same photo by more
    than half of the smaller one's area (so the examples are not one spot at five scales).

    Vectorised over channels; the greedy choice runs ``count`` rounds over the best 32 * count
    candidates of every channel.
    """
    scores = np.asarray(scores, np.float32)
    pool = min(len(scores), 32 * count)
    order = np.argsort(-scores, axis=0)[:pool].T  # (k, pool) crop indices, best first
    cand = boxes[order]  # (k, pool, 4)
    photo, top, left, side = (cand[..., i].astype(np.float64) for i in range(4))
    # Overlap between candidates a and b of the same channel, as a fraction of the smaller crop.
    dy = np.minimum(top[:, :, None] + side[:, :, None], top[:, None] + side[:, None]) - np.maximum(top[:, :, None], top[:, None])
    dx = np.minimum(left[:, :, None] + side[:, :, None], left[:, None] + side[:, None]) - np.maximum(left[:, :, None], left[:, None])
    inter = np.clip(dy, 0, None) * np.clip(dx, 0, None)
    smaller = np.minimum(side[:, :, None], side[:, None]) ** 2
    clash = (inter > 0.5 * smaller) & (photo[:, :, None] == photo[:, None])  # (k, pool, pool)
    free = np.ones(order.shape, bool)
    chosen = np.empty((len(order), count), np.int64)
    rows = np.arange(len(order))
    for round_ in range(count):
        first = np.argmax(free, axis=1)  # best candidate still free (free is in score order)
        chosen[:, round_] = order[rows, first]
        free &= ~clash[rows, first]
        free[rows, first] = False
    return chosen
