"""DigitsNet: a small classifier of scikit-learn's handwritten digits, trained in seconds.

The filters chapter uses it for class patterns: with only ten upright classes drawn in the
middle of the image, the image a class logit wants is easy to read (does "0" look like a ring?).

- ``digits_convnet(...)`` builds an untrained DigitsNet.
- ``RECIPE`` is everything that decides the trained model.
- ``digits_model(recipe)``: the weights shipped with the package for the book's recipe, or for
  another recipe trained on the first call and cached under the recipe's hash (see
  ``convviz_helpers.trained``).
"""

import dataclasses

from . import config, trained, training
from ._tf import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained DigitsNet; its hash names the cached file."""

    image_size: int = 32  # data.load_digits(image_size): the 8x8 digits scaled up
    widths: tuple = (16, 32)
    dropout: float = 0.3
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0

    def to_dict(self):
        """The recipe as a JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


RECIPE = Recipe()
NUM_CLASSES = 10


def digits_convnet(input_shape=(32, 32, 3), widths=(16, 32), dropout=0.3):
    """An uncompiled DigitsNet: images (n, ``*input_shape``) in [0, 1] -> (n, 10) softmax.

    Blocks ``conv{i}`` (3x3, ReLU fused in the convolution, as most Keras models write it) and
    ``pool{i}`` (2x2 max-pooling), then ``flatten``, ``dropout`` and a softmax ``predictions``
    Dense layer. Flatten rather than global pooling keeps *where* strokes are in the
    class scores, which is what makes the class patterns look like digits.
    """
    images = keras.Input(tuple(input_shape), name="images")
    x = images
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(int(width), 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(images, outputs, name="digitsnet")


def recipe_hash(recipe=RECIPE):
    """12 hex digits of the SHA-256 of the recipe's fields as sorted JSON."""
    return trained.recipe_hash(recipe)


def model_path(recipe=RECIPE):
    """Where a model trained here for ``recipe`` is cached: ``<cache>/digitsnet-<hash>.weights.h5``."""
    return trained.cached_path("digitsnet", recipe)


def train_digitsnet(recipe=RECIPE, *, verbose=0):
    """``(model, history)`` of the DigitsNet trained with ``recipe``.

    The shipped weights for the book's ``RECIPE``; another recipe trains (a few seconds on a
    CPU) on the first call and is cached (see ``convviz_helpers.trained``). ``history`` maps
    ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` to one float per epoch (empty when
    not recorded). ``verbose`` as in ``training.fit``.
    """
    size = (recipe.image_size, recipe.image_size, 3)
    return trained.load("digitsnet", recipe, lambda: digits_convnet(size, recipe.widths, recipe.dropout),
                        lambda: _train(recipe, verbose))


def digits_model(recipe=RECIPE, *, verbose=0):
    """The trained DigitsNet (keras.Model: (n, 32, 32, 3) in [0, 1] -> (n, 10) softmax).

    See ``train_digitsnet``. The model is shared by every caller in the process: clone it
    before changing its weights.
    """
    return train_digitsnet(recipe, verbose=verbose)[0]


def _train(recipe, verbose):
    from . import data

    digits = data.load_digits(image_size=recipe.image_size)
    config.seed_everything(recipe.seed)
    model = digits_convnet(digits.x_train.shape[1:], recipe.widths, recipe.dropout)
    history = training.fit(model, digits.x_train, digits.y_train, validation=(digits.x_test, digits.y_test),
                 epochs=recipe.epochs, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
                 seed=recipe.seed, verbose=verbose)
    return model, history
