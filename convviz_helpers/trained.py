"""The book's trained models, found by the hash of the recipe that made them.

A chapter asks for "ShapesNet trained with RECIPE"; ``load`` answers, first hit wins:

1. this process's memory (every chapter cell gets the same model object);
2. the weights shipped with the package, ``resources/<name>-<hash>.weights.h5`` (arrays only,
   nothing to execute), so every chapter, every run and every Colab session sees the same model
   and prints the same numbers;
3. the cache folder (``config.cache_dir()``), same file name;
4. training, whose weights and history then go to the cache.

The hash covers every field of the recipe, so a changed recipe never loads weights trained with
another one: it trains into the cache instead (``tools/ship_models.py`` ships it).
"""

import dataclasses
import hashlib
import json
import pathlib
from importlib import resources

from . import config

_MEMORY = {}  # (name, hash) -> (model, history)


def recipe_hash(recipe):
    """12 hex digits of the SHA-256 of a recipe dataclass's fields as sorted JSON."""
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(recipe).items()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def file_stem(name, recipe):
    """``"<name>-<recipe hash>"``: the weights are ``<stem>.weights.h5``, the history ``<stem>.json``."""
    return f"{name}-{recipe_hash(recipe)}"


def shipped_path(name, recipe):
    """The shipped weights file for this recipe (a path that may not exist)."""
    return resources.files(__package__).joinpath(f"resources/{file_stem(name, recipe)}.weights.h5")


def cached_path(name, recipe):
    """The cache folder's weights file for this recipe (a path that may not exist)."""
    return config.cache_dir() / f"{file_stem(name, recipe)}.weights.h5"


def source(name, recipe):
    """Where ``load`` would take the model from now: "memory", "shipped", "cache" or "train"."""
    if (name, recipe_hash(recipe)) in _MEMORY:
        return "memory"
    if shipped_path(name, recipe).is_file():
        return "shipped"
    if cached_path(name, recipe).is_file():
        return "cache"
    return "train"


def load(name, recipe, build, train):
    """``(model, history)`` for ``recipe``, from memory, the package, the cache or training.

    ``build()``: the untrained keras.Model of this recipe. ``train()``: ``(model, history)``,
    trained now; ``history`` a JSON-ready dict (per-epoch lists). The model is shared by every
    caller in the process: clone it before changing its weights.
    """
    key = (name, recipe_hash(recipe))
    if key not in _MEMORY:
        where = source(name, recipe)
        if where == "train":
            model, history = train()
            save(model, history, cached_path(name, recipe), recipe)
        else:
            path = shipped_path(name, recipe) if where == "shipped" else cached_path(name, recipe)
            model = build()
            model.load_weights(path)
            history_file = path.with_name(path.name.replace(".weights.h5", ".json"))
            history = json.loads(history_file.read_text())["history"] if history_file.is_file() else {}
        _MEMORY[key] = (model, history)
    return _MEMORY[key]


def save(model, history, path, recipe):
    """Write ``model``'s weights to ``path`` (``.weights.h5``) and the history beside it (``.json``).

    Written under temporary names, then renamed, so an interrupted save never leaves a file that
    a later ``load`` would take for a finished model.
    """
    path = pathlib.Path(path)
    history_path = path.with_name(path.name.replace(".weights.h5", ".json"))
    partial = path.with_name(path.name.replace(".weights.h5", ".partial.weights.h5"))
    model.save_weights(partial)
    history_path.write_text(json.dumps({"recipe": dataclasses.asdict(recipe), "history": history}, indent=1))
    partial.replace(path)


def clear_memory():
    """Forget the models held in memory; the next ``load`` reads them from disk again."""
    _MEMORY.clear()
