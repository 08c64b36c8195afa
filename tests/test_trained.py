"""The book's trained models ship with the package, keyed by the recipe that made them."""

import dataclasses
import json

import numpy as np
import pytest

from convviz_helpers import data, digitsnet, shapesnet, trained

TINY = dataclasses.replace(shapesnet.RECIPE, train_size=48, val_size=16, widths=(4, 8), epochs=1, batch_size=16)


@pytest.mark.parametrize("name, module", [("shapesnet", shapesnet), ("digitsnet", digitsnet)])
def test_the_book_recipes_are_shipped(name, module, tmp_cache):
    path = trained.shipped_path(name, module.RECIPE)
    assert path.is_file(), (
        f"{path.name} is not in convviz_helpers/resources: the recipe changed; run tools/ship_models.py"
    )
    assert trained.source(name, module.RECIPE) == "shipped"
    record = json.loads(path.with_name(path.name.replace(".weights.h5", ".json")).read_text())
    assert record["recipe"] == json.loads(json.dumps(dataclasses.asdict(module.RECIPE)))


def test_shipped_model_loads_without_training_or_cache(tmp_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the shipped model must load, not train")

    monkeypatch.setattr(shapesnet, "train", refuse)
    model, history = shapesnet.train_shapesnet()
    assert not list(tmp_cache.iterdir())
    assert len(history["val_accuracy"]) == shapesnet.RECIPE.epochs
    assert shapesnet.shapes_model() is model


def test_training_twice_gives_the_same_weights(tmp_cache):
    # Seeded data, initialisation and shuffling, and TensorFlow's deterministic ops: on one
    # machine the same recipe trains the same model, weight for weight.
    first, first_history = shapesnet.train(TINY, verbose=0)
    second, second_history = shapesnet.train(TINY, verbose=0)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert first_history["loss"] == second_history["loss"]


def test_save_and_load_round_trip(tmp_cache):
    model, history = shapesnet.train_shapesnet(TINY, verbose=0)
    assert trained.source("shapesnet", TINY) == "memory"
    trained.clear_memory()
    assert trained.source("shapesnet", TINY) == "cache"
    loaded, loaded_history = shapesnet.train_shapesnet(TINY)
    images = data.make_shapes(4, image_size=TINY.image_size, seed=9).images
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert loaded_history["loss"] == history["loss"]
    assert not list(tmp_cache.glob("*.partial.*"))


def test_recipe_hash_names_every_field():
    base = trained.recipe_hash(shapesnet.RECIPE)
    for field in dataclasses.fields(shapesnet.RECIPE):
        value = getattr(shapesnet.RECIPE, field.name)
        changed = (value + 1) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if changed is None:
            continue
        assert trained.recipe_hash(dataclasses.replace(shapesnet.RECIPE, **{field.name: changed})) != base, field.name
