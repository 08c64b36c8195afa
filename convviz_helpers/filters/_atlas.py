"""The atlas of a model's channels: per layer, each channel's optimised pattern (Lucid's recipe)
beside the crops of the bundled photos that drive it hardest, shipped by recipe hash.

Rendering: the target layers are read from a copy of the model's graph cut after the deepest
one and taking images of any size (the same layers, so the same weights), so an ascent pays
only for the layers it needs and runs at the recipe's size (128 px plus padding) rather than
the model's input size. One compiled program per (model, layer, phase) runs many Adam steps on
a batch of spectra, one image per channel; images never interact except through an explicit
diversity term. Phase one (the first ``redirect_steps``) traces the model with redirected ReLUs.
"""

import contextlib
import dataclasses
import json
import math
import time
import weakref
from importlib import resources

import numpy as np

from .. import config, data, gradients, models
from .._tf import keras
from ._ascent import _indices
from ._exemplars import crop_boxes, crop_pixels, top_examples
from ._images import lucid_image, lucid_shape
from ._objectives import feature_layer
from ._recipe import AtlasRecipe, atlas_hash
from ._redirect import redirecting

ops = keras.ops

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
SHIPPED_RECIPE = AtlasRecipe()


# --- the cut, size-free copy of a model's graph ----------------------------------------------------

_nets = weakref.WeakKeyDictionary()  # model -> {ids of target layers: keras.Model}


def _cut(model, targets):
    """A keras.Model on (n, any, any, C) images returning the outputs of ``targets`` (layers of
    ``model``, top level of a functional model), built by calling ``model``'s layers again in
    graph order up to the deepest target. Raises ValueError where that is impossible."""
    per_model = _nets.setdefault(model, {})
    key = tuple(id(layer) for layer in targets)
    if key in per_model:
        return per_model[key]
    if gradients.graph_outputs(model) is None or len(model.inputs) != 1:
        raise ValueError(f"An atlas needs a functional model with one image input; {model.name!r} is not one.")
    top = {id(layer) for layer in model.layers}
    for layer in targets:
        if id(layer) not in top:
            raise ValueError(
                f"Layer {layer.name!r} is inside a nested model of {model.name!r}: an atlas reads layers at the "
                "top level of a functional model (pass the nested model itself).")
    source = model.inputs[0]
    images = keras.Input((None, None, source.shape[-1]), name="images")
    tensors = {id(source): images}
    missing = {id(layer) for layer in targets}
    for layer in model.layers:
        if not missing:
            break
        if isinstance(layer, keras.layers.InputLayer):
            tensors[id(layer.output)] = images
            continue
        try:
            inbound, produced = layer.input, layer.output
        except (AttributeError, ValueError) as error:
            raise ValueError(f"Layer {layer.name!r} of {model.name!r} runs more than once; an atlas needs "
                             "each layer on the way to its targets to run once.") from error
        flat = inbound if isinstance(inbound, (list, tuple)) else [inbound]
        if not all(id(t) in tensors for t in flat):
            continue  # a branch that does not start from the image input
        args = [tensors[id(t)] for t in flat]
        tensors[id(produced)] = layer(args if isinstance(inbound, (list, tuple)) else args[0])
        missing.discard(id(layer))
    net = keras.Model(images, [tensors[id(layer.output)] for layer in targets], name=f"{model.name}_cut")
    per_model[key] = net
    return net


def _target(model, layer):
    """``(layer to read, layer to run without its activation or None, channels, rank)``: the
    pre-activation of ``layer`` (a ReLU layer is read at its input; a fused activation is
    dropped); a Dense layer (rank 2) is read before its softmax."""
    found = models.find_layer(model, layer)
    if models.output_rank(found) == 2:
        linear = found if getattr(found, "activation", None) is not None else None
        return found, linear, int(found.output.shape[-1]), 2
    record, linear, channels = feature_layer(model, found)
    return record, linear, channels, 4


# --- the ascent ------------------------------------------------------------------------------------


def _transforms(targets, recipe, steps):
    """(steps, k, 8) float32 transforms for ``keras.ops.image.affine_transform`` on the padded
    image (side ``size + 2 pad``): shift up to ``jitter`` px, then scale and rotate about the
    centre, then shift up to ``jitter_after`` px, drawn per target from ``(seed, target, 7)``."""
    side = recipe.size + 2 * recipe.pad
    centre = (side - 1) / 2
    low, high = recipe.scale
    out = np.empty((steps, len(targets), 8), np.float32)
    for j, target in enumerate(targets):
        rng = np.random.default_rng([recipe.seed, int(target), 7])
        angle = np.deg2rad(rng.uniform(-recipe.rotate, recipe.rotate, steps))
        scale = rng.uniform(low, high, steps)
        before = rng.integers(0, recipe.jitter + 1, (2, steps)) - recipe.jitter / 2
        after = rng.integers(0, recipe.jitter_after + 1, (2, steps)) - recipe.jitter_after / 2
        # Output pixel p samples the input at centre + R/scale (p - centre + after) + before.
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        ax, ay = after
        bx, by = before
        out[:, j] = np.stack([cos, -sin, centre - cos * (centre - ax) + sin * (centre - ay) + bx,
                              sin, cos, centre - sin * (centre - ax) - cos * (centre - ay) + by,
                              np.zeros(steps), np.zeros(steps)], axis=1)
    return out


def _values(maps, targets, rank, objective):
    """(b,) the objective of each image on its own target: the channel's spatial mean
    ("channel") or its value at the centre position ("neuron"); a Dense output's unit."""
    index = ops.cast(targets, "int32")
    if rank == 2:
        return gradients.select(maps, index)
    picked = ops.take_along_axis(maps, ops.reshape(index, (-1, 1, 1, 1)), axis=3)[..., 0]
    if objective == "neuron":
        return picked[:, picked.shape[1] // 2, picked.shape[2] // 2]
    return ops.mean(picked, axis=(1, 2))


def _diversity(maps):
    """(b,) for each image, the mean cosine similarity of its Gram matrix (channels x channels of
    ``maps``) to the other images' (Distill's diversity term; 0 for a batch of one)."""
    b = ops.shape(maps)[0]
    flat = ops.reshape(maps, (b, -1, maps.shape[-1]))
    gram = ops.reshape(ops.einsum("bpc,bpd->bcd", flat, flat), (b, -1))
    gram = gram / (ops.sqrt(ops.sum(ops.square(gram), axis=1, keepdims=True)) + 1e-12)
    similar = ops.matmul(gram, ops.transpose(gram))
    count = ops.cast(b, "float32")
    return (ops.sum(similar, axis=1) - 1.0) / ops.maximum(count - 1.0, 1.0)


def _program(net, linear, rank, recipe, redirect, objective, diversity):
    """A compiled ``run(params, m, v, targets, transforms, first, rate) -> (params, m, v,
    values)``: ``len(transforms)`` Adam steps (step numbers ``first + 1``...) maximising each
    image's objective, ``values`` the objective at the last step."""
    size, pad = recipe.size, recipe.pad
    side = size + 2 * pad
    crop = side - recipe.jitter - recipe.jitter_after
    offset = (side - crop) // 2
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8

    def scored(params, targets, transform):
        images = lucid_image(params, size, recipe.decay_power, recipe.fourier, recipe.decorrelate)
        padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=0.5)
        moved = ops.image.affine_transform(padded, transform, interpolation="bilinear",
                                           fill_mode="constant", fill_value=0.5)
        canvas = moved[:, offset:offset + crop, offset:offset + crop]
        with contextlib.ExitStack() as stack:
            if redirect:
                stack.enter_context(redirecting(net))
            if linear is not None:
                stack.enter_context(gradients.linear_activation(linear))
            maps = net(canvas, training=False)
        values = _values(maps, targets, rank, objective)
        if diversity:
            values = values - diversity * _diversity(maps)
        return values

    value_and_gradient = gradients.value_and_gradient(scored)

    def run(params, m, v, targets, transforms, first, rate):
        def step(index, state):
            params, m, v, _ = state
            values, grad = value_and_gradient(params, targets, transforms[index])
            count = first + ops.cast(index, "float32") + 1.0
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * ops.square(grad)
            step_size = rate * ops.sqrt(1 - ops.power(beta2, count)) / (1 - ops.power(beta1, count))
            return params + step_size * m / (ops.sqrt(v) + epsilon), m, v, values

        start = (params, m, v, ops.zeros_like(ops.cast(targets, "float32")))
        return ops.fori_loop(0, ops.shape(transforms)[0], step, start)

    shape = (None, *lucid_shape(size, recipe.fourier))
    return gradients.compile(net, run, [(shape, "float32"), (shape, "float32"), (shape, "float32"),
                                        ((None,), "int32"), ((None, None, 8), "float32"), ((), "float32"),
                                        ((), "float32")])


def render(model, layer, channels=None, *, recipe=None, objective="channel", diversity=0.0, seeds=None,
           batch_size=32, progress=None):
    """Patterns of ``layer``'s channels by the atlas recipe: (k, S, S, 3) float32 in [0, 1].

    ``model``: a functional keras.Model on [0, 1] images (preprocessing inside), ``layer``: a
    layer name or object at its top level, image-shaped (read before its ReLU) or a Dense layer
    (read before its softmax: class patterns). ``channels``: None (all), an int or a sequence.
    ``recipe``: an ``AtlasRecipe`` (default: the shipped one). ``objective``: "channel" (the
    spatial mean) or "neuron" (the centre position only). ``diversity``: weight of Distill's
    diversity term (the mean cosine similarity of an image's Gram matrix of the layer to the
    other images'), which couples the images of a batch: use it with one channel repeated, e.g.
    ``channels=[c] * 4``. ``seeds``: per image, the seed of its start and transforms (default:
    the channel id, so a channel's pattern does not depend on its batch). Raises ValueError for a
    bad layer, channel, objective or recipe.
    """
    recipe = SHIPPED_RECIPE if recipe is None else recipe
    if not isinstance(recipe, AtlasRecipe):
        raise ValueError(f"recipe must be a filters.AtlasRecipe, got {type(recipe).__name__}.")
    if objective not in ("channel", "neuron"):
        raise ValueError(f"objective must be 'channel' or 'neuron', got {objective!r}.")
    diversity = float(diversity)
    record, linear, count, rank = _target(model, layer)
    if objective == "neuron" and rank != 4:
        raise ValueError(f"objective='neuron' needs an image-shaped layer; {record.name!r} is not one.")
    targets = _indices(channels, count, "channel")
    seeds = targets if seeds is None else _indices(seeds, 2**31 - 1, "seed")
    if len(seeds) != len(targets):
        raise ValueError(f"seeds must give one seed per channel ({len(targets)}), got {len(seeds)}.")
    if diversity and len(targets) > batch_size:
        raise ValueError("A diversity term couples the images of one batch: pass at most batch_size images.")
    net = _cut(model, [record])
    phases = []
    for redirect, steps in ((True, min(recipe.redirect_steps, recipe.steps)),
                            (False, recipe.steps - min(recipe.redirect_steps, recipe.steps))):
        if steps:
            key = ("atlas", recipe, redirect, objective, diversity, id(linear))
            run = gradients.compiled_for(net, key, lambda proxy, r=redirect: _program(
                proxy, linear, rank, recipe, r, objective, diversity))
            phases.append((run, steps))
    from tqdm.auto import tqdm

    show = len(targets) > batch_size if progress is None else bool(progress)
    bar = tqdm(total=len(targets) * recipe.steps, desc=f"{record.name} patterns", disable=not show, unit="step")
    shape = lucid_shape(recipe.size, recipe.fourier)
    chunks = []
    for start in range(0, len(targets), batch_size):
        chunk, chunk_seeds = targets[start:start + batch_size], seeds[start:start + batch_size]
        params = np.stack([np.random.default_rng([recipe.seed, int(s)]).normal(0, recipe.spectrum_sd, shape)
                           for s in chunk_seeds]).astype(np.float32)
        m, v = np.zeros_like(params), np.zeros_like(params)
        transforms = _transforms(chunk_seeds, recipe, recipe.steps)
        done = 0
        for run, steps in phases:
            per_call = math.ceil(steps / 8) if show else steps
            for first in range(done, done + steps, per_call):
                part = transforms[first:min(first + per_call, done + steps)]
                params, m, v, _ = run(params, m, v, chunk, part, np.float32(first), np.float32(recipe.learning_rate))
                params, m, v = np.asarray(params), np.asarray(m), np.asarray(v)
                bar.update(len(chunk) * len(part))
            done += steps
        chunks.append(np.asarray(lucid_image(params, recipe.size, recipe.decay_power, recipe.fourier,
                                             recipe.decorrelate)))
    bar.close()
    return np.clip(np.concatenate(chunks), 0.0, 1.0).astype(np.float32)


def channel_means(model, layers, images, batch_size=64):
    """Spatial means of the pre-activations of ``layers`` (names or layers, image-shaped) for
    ``images`` (n, h, w, 3) in [0, 1] at any size: a list of (n, c) float32, one per layer, from
    one forward pass per chunk through all layers together."""
    found = [_target(model, layer) for layer in layers]
    if any(rank != 4 for *_, rank in found):
        raise ValueError("channel_means reads image-shaped layers only.")
    records = [record for record, *_ in found]
    linears = [linear for _, linear, *_ in found if linear is not None]
    net = _cut(model, records)
    images = np.asarray(images, np.float32)

    def build(proxy):
        def run(batch):
            with contextlib.ExitStack() as stack:
                for linear in linears:
                    stack.enter_context(gradients.linear_activation(linear))
                maps = proxy(batch, training=False)
            maps = maps if isinstance(maps, (list, tuple)) else [maps]
            return [ops.mean(m, axis=(1, 2)) for m in maps]

        return gradients.compile(proxy, run, [((None, *images.shape[1:]), "float32")])

    run = gradients.compiled_for(net, ("means", images.shape[1:], tuple(id(x) for x in linears)), build)
    parts = [run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return [np.concatenate([np.asarray(part[j]) for part in parts]).astype(np.float32) for j in range(len(records))]


# --- the atlas -------------------------------------------------------------------------------------


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
    counts = [_target(model, layer)[2] for layer in layers]
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
