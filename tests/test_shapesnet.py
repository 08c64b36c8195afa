"""ShapesNet: architecture, the book recipe's accuracy, and the recipe-keyed model cache.

The accuracy test uses ``shapes_model()``: under ``make test`` the training chapter has just
trained the book's model into the test cache, so it loads; on its own it trains (minutes).
"""

import dataclasses

import numpy as np
import pytest

from convviz_helpers import data, models, shapesnet, training

# Never used by the recipe (train/validation seeds 1 and 2) nor by the chapter's test set.
FRESH_SEED = 12345

TINY = dataclasses.replace(shapesnet.RECIPE, train_size=48, val_size=16, widths=(4, 8), epochs=1, batch_size=16)


def test_convnet_layers_and_last_conv_map():
    model = shapesnet.shapes_convnet(64, widths=(16, 32, 64, 128))
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 6)
    last = models.last_conv_layer(model)
    assert last.name == "block4_relu"
    assert last.output.shape[1:3] == (8, 8)
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def test_augmentation_acts_only_in_training():
    model = shapesnet.shapes_convnet(32, widths=(4, 8), augment=True)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    augment = keras_model_until(model, "augment_contrast")
    np.testing.assert_allclose(augment(images, training=False), images, atol=1e-6)
    assert not np.allclose(augment(images, training=True), images, atol=1e-3)


def keras_model_until(model, layer_name):
    from convviz_helpers._tf import keras

    return keras.Model(model.input, model.get_layer(layer_name).output)


@pytest.mark.parametrize("kwargs", [dict(input_size=8, widths=(8, 16, 32, 64)), dict(widths=()), dict(dropout=1.0)])
def test_convnet_rejects_impossible_architectures(kwargs):
    with pytest.raises(ValueError):
        shapesnet.shapes_convnet(**kwargs)


def test_book_recipe_reaches_95_percent_on_a_fresh_seed():
    test = data.make_shapes(1000, image_size=shapesnet.RECIPE.image_size, seed=FRESH_SEED)
    accuracy = training.evaluate(shapesnet.shapes_model(), test.images, test.labels)
    assert accuracy >= 0.95


def test_models_reexports_the_book_model():
    assert models.shapes_model() is shapesnet.shapes_model()


def test_cache_round_trips_through_disk(tmp_cache):
    model, history = shapesnet.train_shapesnet(TINY, verbose=0)
    assert shapesnet.model_path(TINY).exists()
    assert len(history["loss"]) == 1
    images = data.make_shapes(8, image_size=TINY.image_size, seed=FRESH_SEED).images
    before = model.predict(images, verbose=0)
    assert shapesnet.shapes_model(TINY) is model  # the in-process cache

    shapesnet.clear_memory_cache()
    loaded, loaded_history = shapesnet.train_shapesnet(TINY)
    assert loaded is not model
    np.testing.assert_allclose(loaded.predict(images, verbose=0), before, rtol=1e-5, atol=1e-6)
    assert loaded_history == history


def test_changed_recipe_has_a_new_hash_and_retrains(tmp_cache):
    shapesnet.train_shapesnet(TINY, verbose=0)
    changed = dataclasses.replace(TINY, learning_rate=TINY.learning_rate / 2)
    assert shapesnet.recipe_hash(changed) != shapesnet.recipe_hash(TINY)
    assert not shapesnet.model_path(changed).exists()
    shapesnet.train_shapesnet(changed, verbose=0)
    assert sorted(p.name for p in tmp_cache.glob("shapesnet-*.weights.h5")) == sorted(
        [shapesnet.model_path(TINY).name, shapesnet.model_path(changed).name]
    )


def test_recipe_hash_is_stable_and_twelve_hex_digits():
    assert shapesnet.recipe_hash() == shapesnet.recipe_hash(dataclasses.replace(shapesnet.RECIPE))
    assert len(shapesnet.recipe_hash()) == 12
    int(shapesnet.recipe_hash(), 16)


@pytest.mark.parametrize(
    "change, message",
    [(dict(epochs=0), "epochs"), (dict(optimizer="adamax2"), "valid optimizers"), (dict(image_size=4), "image_size")],
)
def test_bad_recipe_fails_clearly_before_training(tmp_cache, change, message):
    with pytest.raises(ValueError, match=message):
        shapesnet.train_shapesnet(dataclasses.replace(TINY, **change), verbose=0)
    assert not list(tmp_cache.glob("shapesnet-*"))
