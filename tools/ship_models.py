"""Ship the book's trained models: weights (and training history) into the package's resources.

Run after changing ``shapesnet.RECIPE`` or ``digitsnet.RECIPE``, then commit the new files and
delete the old ones. For each model it takes the copy in the cache folder if the recipe was
already trained there (``CONVVIZ_CACHE``), else trains now, and writes
``convviz_helpers/resources/<name>-<recipe hash>.weights.h5`` and ``.json``.

    .venv/bin/python tools/ship_models.py
"""

import pathlib
import sys

from convviz_helpers import digitsnet, shapesnet, trained

RESOURCES = pathlib.Path(__file__).resolve().parents[1] / "convviz_helpers" / "resources"
MODELS = {"shapesnet": (shapesnet.RECIPE, shapesnet.train_shapesnet),
          "digitsnet": (digitsnet.RECIPE, digitsnet.train_digitsnet)}


def main():
    for name, (recipe, load) in MODELS.items():
        target = RESOURCES / f"{trained.file_stem(name, recipe)}.weights.h5"
        if target.exists():
            print(f"{name}: {target.name} is already shipped")
            continue
        print(f"{name}: from {trained.source(name, recipe)}")
        model, history = load(recipe)
        trained.save(model, history, target, recipe)
        print(f"{name}: wrote {target.relative_to(RESOURCES.parents[1])} and its .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
