"""The book's data: procedural shapes with exact masks, bundled photos, digits, and TFDS sets.

Everything except ``load_dataset`` works offline from what scikit-image and scikit-learn ship.
Images are float32 in [0, 1], batch first, channels last.

The shapes dataset exists so that explanations can be *scored*: every image comes with the
pixel mask of its one object, so a heatmap can be checked against where the object really is.

One job per module: ``_shapes`` (``make_shapes``: geometry, colour, assembly), ``_outlines``
(the six classes and their masks), ``_backgrounds`` (textured, tinted, cluttered backgrounds),
``_photos`` (``sample_image``), ``_digits`` (``load_digits``), ``_tfds`` (``load_dataset``).
"""

from ._digits import Digits, load_digits
from ._outlines import SHAPE_CLASSES
from ._photos import DISTINCT_SAMPLE_IMAGES, SAMPLE_IMAGES, sample_image
from ._shapes import Shapes, make_shapes
from ._tfds import TFDS_DATASETS, load_dataset

__all__ = ["make_shapes", "Shapes", "SHAPE_CLASSES", "sample_image", "SAMPLE_IMAGES",
           "DISTINCT_SAMPLE_IMAGES", "load_digits", "Digits", "load_dataset", "TFDS_DATASETS"]
