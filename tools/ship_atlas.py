"""Ship EfficientNet-Lite0's atlas: patterns and dataset examples into the package's resources.

Run after changing ``filters.AtlasRecipe``'s defaults or the shipped layers, then commit the new
``convviz_helpers/resources/atlas-efficientnet_lite0-<hash>.npz`` and delete the old one. Renders
one layer at a time and keeps each finished layer in the cache folder (``CONVVIZ_CACHE``), so an
interrupted run resumes where it stopped; prints the time per layer. On a 2-core CPU shared with
other work, about 10-20 minutes per layer; run it in the background with a log:

    nohup .venv/bin/python tools/ship_atlas.py > ship_atlas.log 2>&1 &

``--reverse`` renders the layers deepest first (a second process so started shares the work;
each skips a layer the other has finished).
"""

import json
import pathlib
import sys
import time

import numpy as np

from convviz_helpers import config, filters, models, trained
from convviz_helpers.filters import _atlas
from convviz_helpers.filters._recipe import atlas_hash

RESOURCES = pathlib.Path(__file__).resolve().parents[1] / "convviz_helpers" / "resources"
NAME = "efficientnet_lite0"


def main():
    recipe = _atlas.SHIPPED_RECIPE
    model = models.pretrained(NAME)
    layers = list(_atlas.SHIPPED[NAME])
    channels = [np.arange(count) for count in _atlas.SHIPPED[NAME].values()]
    digest = atlas_hash(recipe, model, layers, channels)
    target = RESOURCES / _atlas.file_name(NAME, digest)
    if target.exists():
        print(f"{target.name} is already shipped")
        return 0
    print(f"recipe {json.dumps(recipe.fields())}\nhash {digest}", flush=True)
    order = list(zip(layers, channels))
    patterns = {}
    for layer, ids in (order[::-1] if "--reverse" in sys.argv else order):
        partial = config.cache_dir() / f"atlas-part-{trained.recipe_hash(recipe)}-{layer}-{len(ids)}.npy"
        if partial.exists():
            patterns[layer] = np.load(partial, allow_pickle=False)
            print(f"{layer}: taken from {partial}", flush=True)
            continue
        start = time.perf_counter()
        found = filters.render(model, layer, ids, recipe=recipe, progress=False)
        np.save(partial, found)
        patterns[layer] = found
        print(f"{layer}: {len(ids)} channels x {recipe.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    arrays = _atlas.compute(model, layers, channels, recipe, patterns=[patterns[layer] for layer in layers])
    print(f"dataset examples and activations in {time.perf_counter() - start:.0f} s", flush=True)
    np.savez_compressed(target, **arrays)
    print(f"wrote {target.relative_to(RESOURCES.parents[1])}: {target.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
