"""The atlas recipe: every setting that changes an atlas's arrays, hashed to name its files."""

import dataclasses
import hashlib
import json

import numpy as np


@dataclasses.dataclass(frozen=True)
class AtlasRecipe:
    """How an atlas is computed (Lucid's ``render_vis`` defaults, as in the Distill article
    *Feature Visualization*, unless noted).

    Pattern (per channel, one image optimised with all the layer's channels in one batch):
    ``size`` px square, Lucid's Fourier parameterisation (``fourier``; else one value per
    pixel) with decorrelated colour (``decorrelate``; start values normal with sd
    ``spectrum_sd``, frequency decay ``decay_power``), squashed by a sigmoid; ``steps`` of
    Adam at ``learning_rate`` on the channel's spatial mean pre-activation; every step sees the
    image padded by ``pad`` px of grey, shifted by up to ``jitter`` px, scaled by a factor in
    ``scale``, rotated by up to ``rotate`` degrees and shifted by up to ``jitter_after`` px
    (one random affine transform per step and image, drawn from ``(seed, channel)``); for the
    first ``redirect_steps`` steps every ReLU/ReLU6 passes the gradient that would open a closed
    unit (``filters.redirected_relu``).

    Dataset examples: square crops of the bundled photos (``data.SAMPLE_IMAGES``) of side
    ``crop_fractions`` times the photo's shorter side, every ``crop_stride`` of a side, resized
    to ``size``; the ``examples`` crops with the highest spatial mean pre-activation per
    channel, at most one per photo and crop scale overlapping by more than half.
    """

    size: int = 128
    steps: int = 256
    learning_rate: float = 0.05
    spectrum_sd: float = 0.01
    decay_power: float = 1.0
    fourier: bool = True
    decorrelate: bool = True
    pad: int = 12
    jitter: int = 8
    scale: tuple = (0.9, 1.1)
    rotate: float = 10.0
    jitter_after: int = 4
    redirect_steps: int = 16
    seed: int = 0
    examples: int = 8
    crop_fractions: tuple = (0.125, 0.1875, 0.25, 0.375, 0.5)
    crop_stride: float = 0.5
    version: int = 1

    def __post_init__(self):
        for name in ("size", "steps", "examples"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"AtlasRecipe.{name} must be a positive integer, got {value!r}.")
        if self.size < 16:
            raise ValueError(f"AtlasRecipe.size must be at least 16 px, got {self.size}.")
        if not self.learning_rate > 0:
            raise ValueError(f"AtlasRecipe.learning_rate must be positive, got {self.learning_rate!r}.")
        for name in ("pad", "jitter", "jitter_after", "redirect_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"AtlasRecipe.{name} must be >= 0, got {getattr(self, name)!r}.")
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"AtlasRecipe.scale must be (low, high) with 0 < low <= high, got {self.scale!r}.")
        if not self.crop_fractions or not all(0 < f <= 1 for f in self.crop_fractions):
            raise ValueError(f"AtlasRecipe.crop_fractions must be in (0, 1], got {self.crop_fractions!r}.")
        if not 0 < self.crop_stride <= 1:
            raise ValueError(f"AtlasRecipe.crop_stride must be in (0, 1], got {self.crop_stride!r}.")

    def fields(self):
        """The recipe as a JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def weights_fingerprint(model):
    """16 hex digits of the SHA-256 of ``model``'s weights (names, shapes and values)."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(np.asarray(variable), dtype=np.float32)
        digest.update(f"{variable.path}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def atlas_hash(recipe, model, layers, channels):
    """12 hex digits naming an atlas: the recipe's fields, the model's name and weights, the
    layers and their channel ids (lists of ints)."""
    key = {"recipe": recipe.fields(), "model": model.name, "weights": weights_fingerprint(model),
           "layers": list(layers), "channels": [[int(c) for c in ids] for ids in channels]}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


# The recipe of the shipped atlas, and the default of ``render`` and ``atlas``.
SHIPPED_RECIPE = AtlasRecipe()
