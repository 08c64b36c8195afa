"""Helpers for the book *What Convnets Learn*.

The notebooks teach; this package computes. Its submodules:

- ``config``: profile (quick/full), cache folder, seeds, device summary
- ``data``: the procedural shapes dataset, bundled photos and digits, tensorflow-datasets
- ``models``: the book's ShapesNet, every ``keras.applications`` model, layer lookup
- ``activations``: feature maps of any layers for a batch of images
- ``filters``: filter patterns by gradient ascent
- ``cam``: Grad-CAM, guided backpropagation and their relatives
- ``metrics``: scoring explanations against ground-truth masks
- ``plotting``: overlays and image grids
- ``checks``: graders for the exercises

plus the modules they build on; the book's API reference page lists them all.

Typical use::

    import convviz_helpers as cv
    shapes = cv.data.make_shapes(64)

Submodules are imported on first attribute access, so ``import convviz_helpers`` stays fast
(TensorFlow loads only when a submodule that needs it is used).
"""

import importlib
import pkgutil

__version__ = "0.2.0"  # keep equal to pyproject.toml's version

# Every public submodule (no leading underscore) found beside this file. Listing the folder
# rather than naming modules here means a new module is reachable as `cv.<name>` at once.
_SUBMODULES = tuple(
    sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    # PEP 562: called only when `name` is not yet an attribute. Importing the submodule also
    # binds it on this package, so the lookup happens once per name.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
