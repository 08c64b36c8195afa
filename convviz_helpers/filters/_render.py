"""Rendering an atlas pattern: Lucid's recipe as one compiled program of many Adam steps.

One compiled program per (model, layer, phase) runs many Adam steps on a batch of spectra, one
image per channel, each step seeing the image padded, jittered, scaled and rotated; images never
interact except through an explicit diversity term. Phase one (the first ``redirect_steps``)
traces the model with redirected ReLUs. ``render`` returns (k, S, S, 3) float32 in [0, 1].
"""

import contextlib
import math

import numpy as np

from .. import gradients
from .._tf import keras
from ._ascent import _indices
from ._cut import cut_model, pre_activation
from ._images import lucid_image, lucid_shape
from ._recipe import SHIPPED_RECIPE, AtlasRecipe
from ._redirect import redirecting

ops = keras.ops


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
    record, linear, count, rank = pre_activation(model, layer)
    if objective == "neuron" and rank != 4:
        raise ValueError(f"objective='neuron' needs an image-shaped layer; {record.name!r} is not one.")
    targets = _indices(channels, count, "channel")
    seeds = targets if seeds is None else _indices(seeds, 2**31 - 1, "seed")
    if len(seeds) != len(targets):
        raise ValueError(f"seeds must give one seed per channel ({len(targets)}), got {len(seeds)}.")
    if diversity and len(targets) > batch_size:
        raise ValueError("A diversity term couples the images of one batch: pass at most batch_size images.")
    net = cut_model(model, [record])
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
