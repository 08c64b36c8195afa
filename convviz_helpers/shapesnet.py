"""ShapesNet: the book's own small convnet, trained on the procedural shapes dataset.

- ``shapes_convnet(...)`` builds an untrained ShapesNet.
- ``RECIPE`` is everything that decides the trained model (data, architecture, optimisation).
- ``train_shapesnet(recipe)`` returns ``(model, history)``: the weights shipped with the
  package for the book's recipe (see ``convviz_helpers.trained``), or for another recipe
  trained on the first call and cached under the recipe's hash. ``shapes_model`` /
  ``shapes_history`` return one half each.
- ``train(recipe)`` always trains now (the training chapter does, to compare with the shipped
  model).
"""

import dataclasses
import time

from . import config, trained, training
from ._tf import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained ShapesNet; its hash names the cached file."""

    # Data: make_shapes(train_size, image_size, seed=train_seed), likewise for validation.
    train_size: int = 8000
    val_size: int = 1000
    train_seed: int = 1
    val_seed: int = 2
    image_size: int = 64
    # Architecture (see shapes_convnet).
    widths: tuple = (16, 32, 64, 128)
    dropout: float = 0.2
    augment: bool = False
    # Optimisation (see training.fit).
    epochs: int = 8
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.05
    seed: int = 0

    def to_dict(self):
        """The recipe as a JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


RECIPE = Recipe()

# Class count of make_shapes; checked against data.SHAPE_CLASSES when training.
NUM_CLASSES = 6


def shapes_convnet(input_size=64, num_classes=NUM_CLASSES, widths=(32, 64, 128), augment=False, dropout=0.2):
    """An uncompiled ShapesNet: images (n, input_size, input_size, 3) in [0, 1] -> (n, num_classes)
    softmax probabilities.

    One block per entry of ``widths``: ``block{i}_conv`` (3x3, no bias) -> ``block{i}_bn`` ->
    ``block{i}_relu``, then ``block{i}_pool`` (2x2 max-pooling) after every block but the last, so
    the last block (``block{len(widths)}_relu``, the layer Grad-CAM uses) keeps a map of
    input_size / 2**(len(widths) - 1) pixels a side: 8x8 for four blocks at 64 px. The head is
    global average pooling (``gap``), ``dropout`` and a softmax ``predictions`` Dense layer.
    With ``augment`` the model starts with random flips, rotations, zooms and contrast changes
    (``augment_*`` layers) that act only in training; at inference they pass images through.
    Raises ValueError when the last block's map would be smaller than 2x2.
    """
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be a non-empty sequence of positive filter counts, got {widths!r}.")
    last_map = int(input_size) // 2 ** (len(widths) - 1)
    if last_map < 2:
        raise ValueError(
            f"input_size={input_size} is too small for {len(widths)} blocks: the last block's map "
            f"would be {last_map}x{last_map}; use at least {2 ** len(widths)} pixels or fewer blocks."
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")

    images = keras.Input((input_size, input_size, 3), name="images")
    x = images
    if augment:
        # Shapes keep their class under any flip or rotation, and small zooms and contrast
        # changes mimic the variation between the dataset's drawings.
        x = keras.layers.RandomFlip("horizontal_and_vertical", name="augment_flip")(x)
        x = keras.layers.RandomRotation(0.1, fill_mode="reflect", name="augment_rotate")(x)
        x = keras.layers.RandomZoom(0.1, fill_mode="reflect", name="augment_zoom")(x)
        x = keras.layers.RandomContrast(0.2, value_range=(0, 1), name="augment_contrast")(x)
    for i, width in enumerate(widths, start=1):
        # No bias: the BatchNorm right after supplies the offset.
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        if i < len(widths):
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(images, outputs, name="shapesnet")


def recipe_hash(recipe=RECIPE):
    """12 hex digits of the SHA-256 of the recipe's fields as sorted JSON."""
    return trained.recipe_hash(recipe)


def model_path(recipe=RECIPE):
    """Where a model trained here for ``recipe`` is cached: ``<cache>/shapesnet-<hash>.weights.h5``."""
    return trained.cached_path("shapesnet", recipe)


def _build(recipe):
    return shapes_convnet(recipe.image_size, NUM_CLASSES, recipe.widths, augment=recipe.augment,
                          dropout=recipe.dropout)


def train_shapesnet(recipe=RECIPE, *, verbose=None):
    """The ShapesNet trained with ``recipe`` and its training history: ``(model, history)``.

    For the book's ``RECIPE`` the package ships the weights (same model, same numbers on every
    run); another recipe is trained on the first call (minutes on a CPU) and cached, see
    ``convviz_helpers.trained``. ``history`` maps ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy`` to one float per epoch, plus ``seconds``: the training time. ``verbose`` as
    in ``training.fit``. The model is shared by every caller in the process: clone it before
    changing its weights.
    """
    return trained.load("shapesnet", recipe, lambda: _build(recipe), lambda: train(recipe, verbose=verbose))


def shapes_model(recipe=RECIPE, *, verbose=None):
    """The book's trained ShapesNet (a keras.Model: (n, 64, 64, 3) in [0, 1] -> (n, 6) softmax).

    The shipped weights for the book's recipe; see ``train_shapesnet``.
    """
    return train_shapesnet(recipe, verbose=verbose)[0]


def shapes_history(recipe=RECIPE, *, verbose=None):
    """The training history of the model ``shapes_model(recipe)`` returns; see ``train_shapesnet``."""
    return train_shapesnet(recipe, verbose=verbose)[1]


def clear_memory_cache():
    """Forget models held in memory, so the next call loads from disk (the cache stays)."""
    trained.clear_memory()


def train(recipe=RECIPE, *, verbose=None):
    """Train a ShapesNet with ``recipe`` now, whatever is shipped or cached: ``(model, history)``.

    Deterministic as far as TensorFlow allows on a CPU (seeded data, initialisation and
    shuffling, deterministic ops); ``history`` as in ``train_shapesnet``. Nothing is saved.
    """
    from . import data

    if len(data.SHAPE_CLASSES) != NUM_CLASSES:
        raise RuntimeError(f"make_shapes has {len(data.SHAPE_CLASSES)} classes; shapesnet expects {NUM_CLASSES}.")
    train = data.make_shapes(recipe.train_size, image_size=recipe.image_size, seed=recipe.train_seed)
    val = data.make_shapes(recipe.val_size, image_size=recipe.image_size, seed=recipe.val_seed)
    config.seed_everything(recipe.seed)
    model = _build(recipe)
    start = time.perf_counter()
    history = training.fit(
        model,
        train.images,
        train.labels,
        validation=(val.images, val.labels),
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        optimizer=recipe.optimizer,
        learning_rate=recipe.learning_rate,
        warmup_fraction=recipe.warmup_fraction,
        label_smoothing=recipe.label_smoothing,
        seed=recipe.seed,
        verbose=verbose,
    )
    history["seconds"] = time.perf_counter() - start
    return model, history
