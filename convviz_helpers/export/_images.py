"""The explorer's images: photos as exact 8-bit PNGs, and a filter atlas as PNG sprites + ``atlas.json``."""

import json
from pathlib import Path

import cv2
import numpy as np


def write_png(path, image):
    """(H, W, 3) float in [0, 1] -> 8-bit PNG (exact: the page and the tests read the same bytes)."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)):
        raise OSError(f"Could not write {path}.")


def read_png(path):
    """A PNG written by this module as (H, W, 3) float32 in [0, 1] (what the page feeds its network)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{path} is not a readable image.")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def export_photos(named_images, out_dir):
    """Write ``{name: (H, W, 3) [0, 1] image}`` as ``out_dir/<name>.png``; returns the names in order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in named_images.items():
        write_png(out_dir / f"{name}.png", image)
    return list(named_images)


def _sprite(tiles, columns):
    """(k, s, s, 3) tiles -> one (rows * s, columns * s, 3) image, row by row."""
    k, size = len(tiles), tiles.shape[1]
    rows = -(-k // columns)
    sheet = np.zeros((rows * size, columns * size, 3), np.float32)
    for index in range(k):  # at most a few hundred small copies, once at build time
        row, column = divmod(index, columns)
        sheet[row * size:(row + 1) * size, column * size:(column + 1) * size] = tiles[index]
    return sheet


def export_atlas(atlas, out_dir):
    """Write a filter atlas for the explorer: per layer two PNG sprites and ``atlas.json``.

    ``atlas``: an object with ``.layers`` (layer names) and ``atlas[name]`` giving ``.layer``,
    ``.channels`` (k,) int, ``.patterns`` (k, S, S, 3) in [0, 1], ``.examples`` (k, m, s, s, 3)
    in [0, 1] and ``.example_activations`` (k, m) (what ``filters.atlas`` returns), or None for
    no atlas. Writes ``<layer>-patterns.png`` (the k patterns in one row), ``<layer>-examples.png``
    (row i: channel i's m examples) and ``atlas.json``: ``{"layers": {name: {"channels",
    "pattern_size", "patterns", "examples", "example_size", "example_count",
    "example_activations"}}}``. Returns that dict. Raises ValueError for inconsistent shapes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {"layers": {}}
    for name in ([] if atlas is None else list(atlas.layers)):
        entry = atlas[name]
        channels = np.asarray(entry.channels).astype(int).ravel()
        patterns = np.asarray(entry.patterns, np.float32)
        examples = np.asarray(entry.examples, np.float32)
        activations = np.asarray(entry.example_activations, np.float32)
        k = len(channels)
        if patterns.ndim != 4 or patterns.shape[0] != k or patterns.shape[-1] != 3:
            raise ValueError(f"Atlas layer {name!r}: patterns of shape {patterns.shape} for {k} channels.")
        if examples.ndim != 5 or examples.shape[0] != k or activations.shape != examples.shape[:2]:
            raise ValueError(f"Atlas layer {name!r}: examples {examples.shape} and activations "
                             f"{activations.shape} do not match {k} channels.")
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(entry.layer))
        write_png(out_dir / f"{stem}-patterns.png", _sprite(patterns, k))
        write_png(out_dir / f"{stem}-examples.png",
                   _sprite(examples.reshape(-1, *examples.shape[2:]), examples.shape[1]))
        index["layers"][str(entry.layer)] = {
            "channels": channels.tolist(),
            "pattern_size": int(patterns.shape[1]),
            "patterns": f"{stem}-patterns.png",
            "example_size": int(examples.shape[2]),
            "example_count": int(examples.shape[1]),
            "examples": f"{stem}-examples.png",
            "example_activations": np.round(activations, 4).tolist(),
        }
    (out_dir / "atlas.json").write_text(json.dumps(index, separators=(",", ":")))
    return index
