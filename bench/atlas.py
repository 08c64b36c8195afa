"""One atlas layer against its compute floor.

In one run, for EfficientNet-Lite0's ``block2b_expand_activation`` (or the layer given), 32
channels, the shipped ``filters.AtlasRecipe`` (``--steps`` to shorten it; the ratio is per step):

(a) ``filters.render``: the whole recipe (Fourier image, pad/jitter/scale/rotate, redirected ReLUs
    for the first steps, Adam), all 32 channels in one batch, compiled;
(b) the compute floor: the same number of steps of one forward and one backward pass of the
    same cut network on the same batch of canvases (32 images of 140 px), compiled, nothing else.

Usage: python bench/atlas.py [--layer NAME] [--steps N] [--repeats N]. Prints seconds (median
of N, timed in turns) and the ratio (a)/(b). Timings depend on the machine's load.
"""

import argparse
import contextlib
import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from convviz_helpers import filters, gradients, models  # noqa: E402
from convviz_helpers._tf import keras  # noqa: E402
from convviz_helpers.filters import _atlas, _cut  # noqa: E402
from timing import interleaved  # noqa: E402

ops = keras.ops


def floor(model, layer, recipe, count):
    """(b): ``run(canvases, steps)`` doing ``steps`` forward+backward passes of the cut network."""
    record, linear, _, _ = _cut.pre_activation(model, layer)
    net = _cut.cut_model(model, [record])

    def objective(images):
        with gradients.linear_activation(linear) if linear is not None else contextlib.nullcontext():
            maps = net(images, training=False)
        return ops.mean(maps[..., :count], axis=(1, 2, 3))

    value_and_gradient = gradients.value_and_gradient(objective)

    def run(images, steps):
        def step(index, images):
            _, grad = value_and_gradient(images)
            return images + 1e-6 * grad  # keeps each pass dependent on the last

        return ops.fori_loop(0, steps, step, images)

    side = recipe.size + 2 * recipe.pad - recipe.jitter - recipe.jitter_after
    compiled = gradients.compile(net, run, [((None, side, side, 3), "float32"), ((), "int32")])
    canvases = np.random.default_rng(0).uniform(0, 1, (count, side, side, 3)).astype(np.float32)
    return lambda: np.asarray(compiled(canvases, np.int32(recipe.steps)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layer", default="block2b_expand_activation")
    parser.add_argument("--steps", type=int, default=_atlas.SHIPPED_RECIPE.steps)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = models.pretrained("efficientnet_lite0")
    recipe = dataclasses.replace(_atlas.SHIPPED_RECIPE, steps=args.steps,
                                 redirect_steps=min(args.steps, _atlas.SHIPPED_RECIPE.redirect_steps))
    channels = list(range(32))
    atlas_layer = lambda: filters.render(model, args.layer, channels, recipe=recipe, progress=False)  # noqa: E731
    recipe_time, floor_time = interleaved([atlas_layer, floor(model, args.layer, recipe, len(channels))],
                                          args.repeats, warmup=1)
    print(f"{args.layer}, 32 channels, {args.steps} steps ({gradients.BACKEND}):")
    print(f"  (a) filters.render, the atlas recipe: {recipe_time:7.2f} s")
    print(f"  (b) compute floor, forward+backward:  {floor_time:7.2f} s")
    print(f"  ratio (a)/(b): {recipe_time / floor_time:.2f}")


if __name__ == "__main__":
    main()
