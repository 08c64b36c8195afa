"""The atlas of a model's channels: per layer, each channel's optimised pattern (Lucid's recipe,
``_render``) beside the crops of the bundled photos that drive it hardest (``_exemplars``),
shipped or cached by recipe hash.
"""

import dataclasses
import json
import time
from importlib import resources

import numpy as np

from .. import config, data, models
from ._ascent import _indices
from ._cut import channel_means, pre_activation
from ._exemplars import crop_boxes, crop_pixels, top_examples
from ._recipe import SHIPPED_RECIPE, AtlasRecipe, atlas_hash
from ._render import render

# The shipped atlas of EfficientNet-Lite0: an expansion layer's pre-activation (the batch
# normalisation before its ReLU6) at three depths, and the head's input; per layer, how many
# channels (the first ones). The two deep layers have fewer channels only because a 2-core CPU
# shared with other work rendered them in the time there was (tools/ship_atlas.py).
SHIPPED = {
    "efficientnet_lite0": {
        "block2b_expand_activation": 32,
        "block4c_expand_activation": 32,
        "block6a_expand_activation": 32,
        "top_activation": 32,
    },
}
SHIPPED_CHANNELS = 32  # default channels per layer for a model's own atlas: the first 32


@dataclasses.dataclass
class AtlasLayer:
    """One layer of an atlas; arrays numpy, first axis the k channels.

    ``layer``: the name asked for; ``channels`` (k,) int channel ids in its output;
    ``patterns`` (k, S, S, 3) float32 in [0, 1]; ``pattern_activations`` (k,) float32: each
    channel's spatial mean pre-activation on its pattern; ``examples`` (k, m, S, S, 3) float32
    in [0, 1], the m crops of the bundled photos with the highest spatial mean pre-activation,
    best first; ``example_activations`` (k, m) float32 that activation; ``example_boxes``
    (k, m, 4) int32 (photo index in ``data.SAMPLE_IMAGES``, top, left, side) in the photo's
    pixels; ``example_photos`` (k, m) the photos' names.
    """

    layer: str
    channels: np.ndarray
    patterns: np.ndarray
    pattern_activations: np.ndarray
    examples: np.ndarray
    example_activations: np.ndarray
    example_boxes: np.ndarray

    @property
    def example_photos(self):
        """(k, m) str: the name of the photo each example was cropped from."""
        return np.asarray(data.SAMPLE_IMAGES)[self.example_boxes[..., 0]]


@dataclasses.dataclass
class Atlas:
    """An atlas: ``layers`` (names, shallow to deep), ``atlas[name]`` an ``AtlasLayer``,
    ``recipe``, ``model`` (its name), ``hash`` (names the file), ``source`` ("shipped",
    "cache" or "computed") and ``seconds`` spent computing (0 when loaded)."""

    layers: list
    by_layer: dict
    recipe: AtlasRecipe
    model: str
    hash: str
    source: str
    seconds: float = 0.0

    def __getitem__(self, name):
        if name not in self.by_layer:
            raise KeyError(f"The atlas has no layer {name!r}; its layers are {', '.join(self.layers)}.")
        return self.by_layer[name]

    def __iter__(self):
        return (self.by_layer[name] for name in self.layers)

    def __len__(self):
        return len(self.layers)


def file_name(model_name, digest):
    """``atlas-<model name>-<hash>.npz``."""
    return f"atlas-{model_name}-{digest}.npz"


def shipped_path(model_name, digest):
    """Where the package ships this atlas (a path that may not exist)."""
    return resources.files(__package__.rsplit(".", 1)[0]).joinpath(f"resources/{file_name(model_name, digest)}")


def cached_path(model_name, digest):
    """Where the cache folder keeps this atlas (a path that may not exist)."""
    return config.cache_dir() / file_name(model_name, digest)


def compute(model, layers, channels, recipe, progress=None, patterns=None):
    """The arrays of an atlas (a dict of numpy arrays, as saved): patterns, their activations,
    the top crops' boxes and activations, per layer. ``patterns``: None, or one (k, S, S, 3)
    array per layer already rendered with this recipe (``tools/ship_atlas.py`` renders layer by
    layer so that a long run keeps what it finished)."""
    arrays = {"layers": np.asarray(layers), "recipe": np.asarray(json.dumps(recipe.fields(), sort_keys=True)),
              "photos": np.asarray(data.SAMPLE_IMAGES)}
    if patterns is None:
        patterns = [render(model, layer, ids, recipe=recipe, progress=progress) for layer, ids in zip(layers, channels)]
    boxes = crop_boxes(recipe.crop_fractions, recipe.crop_stride)
    scores = [[] for _ in layers]
    for start in range(0, len(boxes), 256):  # crops in big batches, all layers in one pass
        for found, means in zip(scores, channel_means(model, layers, crop_pixels(boxes[start:start + 256], recipe.size))):
            found.append(means)
    for i, (layer, ids) in enumerate(zip(layers, channels)):
        on_crops = np.concatenate(scores[i])[:, ids]  # (n, k)
        chosen = top_examples(on_crops, boxes, recipe.examples)  # (k, m)
        arrays[f"{i}/channels"] = np.asarray(ids, np.int32)
        arrays[f"{i}/patterns"] = np.round(patterns[i] * 255).astype(np.uint8)
        quantised = arrays[f"{i}/patterns"].astype(np.float32) / 255
        own = channel_means(model, [layer], quantised)[0][:, ids]  # (pattern, channel)
        arrays[f"{i}/pattern_activations"] = np.diagonal(own).astype(np.float32)
        arrays[f"{i}/example_boxes"] = boxes[chosen].astype(np.int32)
        arrays[f"{i}/example_activations"] = np.take_along_axis(on_crops.T, chosen, axis=1).astype(np.float32)
    return arrays


def _loaded(arrays, recipe, model_name, digest, source, seconds):
    layers = [str(name) for name in arrays["layers"]]
    if list(arrays["photos"]) != list(data.SAMPLE_IMAGES):
        raise ValueError("This atlas was made from another set of bundled photos; recompute it.")
    by_layer = {}
    for i, name in enumerate(layers):
        boxes = np.asarray(arrays[f"{i}/example_boxes"])
        by_layer[name] = AtlasLayer(
            layer=name, channels=np.asarray(arrays[f"{i}/channels"]),
            patterns=np.asarray(arrays[f"{i}/patterns"]).astype(np.float32) / 255,
            pattern_activations=np.asarray(arrays[f"{i}/pattern_activations"], np.float32),
            examples=crop_pixels(boxes, recipe.size),
            example_activations=np.asarray(arrays[f"{i}/example_activations"], np.float32),
            example_boxes=boxes)
    return Atlas(layers, by_layer, recipe, model_name, digest, source, seconds)


def atlas(model, layers=None, channels=None, *, recipe=None, progress=None):
    """An atlas of ``model``'s channels: per layer, each channel's pattern and its dataset examples.

    ``model``: ``"efficientnet_lite0"`` (the shipped atlas: the layers of ``SHIPPED`` and their
    first channels, loaded from the package in about a second) or a functional keras.Model on [0, 1]
    images. ``layers``: names (image-shaped layers at the model's top level; a ReLU layer is read
    at its input, the pre-activation); required for a model object. ``channels``: None (the
    first 32 of each layer, or all if fewer), a sequence of ints (the same for every layer) or one
    sequence per layer. ``recipe``: an ``AtlasRecipe`` (default ``AtlasRecipe()``, the shipped one).

    The arrays are found by a hash of the recipe, the model's name and weights, the layers and
    channels: first in the package (``resources/atlas-<model>-<hash>.npz``), then in the cache
    folder (``config.cache_dir()``), else computed now (minutes per layer on a CPU) and saved to
    the cache. A changed recipe therefore never loads stale arrays. Returns an ``Atlas``.
    """
    recipe = SHIPPED_RECIPE if recipe is None else recipe
    if not isinstance(recipe, AtlasRecipe):
        raise ValueError(f"recipe must be a filters.AtlasRecipe, got {type(recipe).__name__}.")
    if isinstance(model, str):
        if model not in SHIPPED:
            raise ValueError(f"No shipped atlas for {model!r}; shipped: {', '.join(SHIPPED)} (or pass a keras.Model).")
        if layers is None and channels is None:
            layers, channels = list(SHIPPED[model]), [np.arange(k) for k in SHIPPED[model].values()]
        model = models.pretrained(model)
    if layers is None or isinstance(layers, str) or not len(layers):
        raise ValueError("layers must be a non-empty list of layer names.")
    layers = [models.find_layer(model, layer).name for layer in layers]
    counts = [pre_activation(model, layer)[2] for layer in layers]
    if channels is None:
        channels = [np.arange(min(SHIPPED_CHANNELS, c)) for c in counts]
    elif len(channels) and np.ndim(channels[0]) == 0:
        channels = [channels] * len(layers)
    if len(channels) != len(layers):
        raise ValueError(f"channels: one sequence per layer ({len(layers)}), got {len(channels)}.")
    channels = [_indices(ids, c, "channel") for ids, c in zip(channels, counts)]
    digest = atlas_hash(recipe, model, layers, channels)
    for source, path in (("shipped", shipped_path(model.name, digest)), ("cache", cached_path(model.name, digest))):
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                return _loaded(dict(stored), recipe, model.name, digest, source, 0.0)
    start = time.perf_counter()
    arrays = compute(model, layers, channels, recipe, progress)
    seconds = time.perf_counter() - start
    path = cached_path(model.name, digest)
    partial = path.with_name(f"{path.stem}.{time.time_ns()}.partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)
    return _loaded(arrays, recipe, model.name, digest, "computed", seconds)
