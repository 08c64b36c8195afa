"""Everything the book's in-browser explorer (``book/explorer.md``) loads: networks, photos, atlas.

The explorer runs a network with TensorFlow.js operations, not with TF.js's Keras loader (which
rejects Keras 3 configs). So a model is written as its own small format:

- ``graph.json``: the operations in topological order, each with its Keras layer name(s), its
  inputs (names of earlier operations or of the model input), its output shape (h, w, c) or
  (units,) and its parameters; BatchNormalization is folded into the convolution or Dense layer
  before it (``w * gamma / sqrt(var + eps)``, bias ``beta + (b - mean) * gamma / sqrt(var + eps)``),
  or becomes a per-channel ``affine`` operation when it follows anything else. Also the class
  names, the layers a reader may pick (every image-shaped output but pooling) and the default
  one (``models.last_conv_layer``).
- ``weights.bin``: every array as little-endian float32, one after the other; each operation
  names its arrays in ``"weights": {"kernel": [offset, shape], ...}`` (offset in float32
  elements; ``kernel`` and ``bias`` for convolutions and Dense, ``scale`` and ``shift`` for
  ``affine``).

Supported layers (what EfficientNet-Lite0 and ShapesNet use, and a few relatives): InputLayer,
Rescaling, Conv2D, DepthwiseConv2D, BatchNormalization, ReLU (plain or capped at 6), Activation
(linear, relu, relu6, sigmoid, tanh, softmax, swish/silu), Add, MaxPooling2D, AveragePooling2D,
GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dense, and layers that do nothing at
inference (Dropout and the Random* augmentations). Anything else raises ValueError naming the
layer.

``build_site(out_dir)`` writes both book models, their photos (the bundled photos at 224 px;
for ShapesNet one procedural shape per class at 64 px) and the chapter-3 atlas where the
package has one; ``make book`` runs it (``python -m convviz_helpers.export DIR``).

One job per module: ``_layer_ops`` (one Keras layer as one operation, BatchNorm folding),
``_graph`` (``export_graph``: the whole model, its weights buffer), ``_images`` (PNG photos,
the atlas sprites); this module assembles the site.
"""

import json
import sys
from pathlib import Path

import numpy as np

from .. import data, imagenet, models
from ._graph import FORMAT_VERSION, export_graph
from ._images import export_atlas, export_photos, read_png, write_png

# Photos the Lite0 page offers: the bundled photos an ImageNet network has classes for.
LITE0_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower", "camera", "coins")
# make_shapes(SHAPES_POOL, 64, seed=SHAPES_SEED): the first image of each class is its photo.
SHAPES_POOL, SHAPES_SEED = 60, 11

__all__ = ["build_site", "main", "export_graph", "export_photos", "export_atlas", "shapes_photos", "read_png",
           "write_png", "FORMAT_VERSION", "LITE0_PHOTOS", "SHAPES_POOL", "SHAPES_SEED"]


def shapes_photos():
    """One procedural shape per ShapesNet class (64 px): ``{class name: image}``, class order."""
    shapes = data.make_shapes(SHAPES_POOL, image_size=64, seed=SHAPES_SEED)
    return {name: shapes.images[int(np.argmax(shapes.labels == i))] for i, name in enumerate(shapes.class_names)}


def build_site(out_dir):
    """Everything the explorer page loads, under ``out_dir`` (``make book`` passes the folder
    that Sphinx copies into the site as ``explorer/``).

    Writes ``models/efficientnet_lite0/`` and ``models/shapesnet/`` (graph, weights, ``photos/``)
    and ``models/index.json`` (per model: title, photo names, input size), plus ``atlas/``
    (the chapter-3 atlas when ``filters.atlas`` exists, else an empty index). Returns the index.
    """
    from .. import filters

    out_dir = Path(out_dir)
    lite0 = models.pretrained("efficientnet_lite0")
    shapes = models.shapes_model()
    photos = {
        "efficientnet_lite0": {name: data.sample_image(name, 224) for name in LITE0_PHOTOS},
        "shapesnet": shapes_photos(),
    }
    titles = {"efficientnet_lite0": "EfficientNet-Lite0 (ImageNet)", "shapesnet": "ShapesNet (6 shapes)"}
    index = {}
    for key, model, names in (("efficientnet_lite0", lite0, imagenet.class_names()),
                              ("shapesnet", shapes, data.SHAPE_CLASSES)):
        graph = export_graph(model, out_dir / "models" / key, class_names=names)
        index[key] = {"title": titles[key], "input_size": graph["input"]["shape"][:2],
                      "photos": export_photos(photos[key], out_dir / "models" / key / "photos")}
    (out_dir / "models" / "index.json").write_text(json.dumps(index, indent=1))
    atlas = filters.atlas("efficientnet_lite0") if hasattr(filters, "atlas") else None
    export_atlas(atlas, out_dir / "atlas")
    return index


def main(argv=None):
    """``python -m convviz_helpers.export OUT_DIR``: ``build_site(OUT_DIR)``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m convviz_helpers.export OUT_DIR")
    index = build_site(argv[0])
    print(f"Explorer assets in {argv[0]}: " + ", ".join(f"{k} ({len(v['photos'])} photos)" for k, v in index.items()))
