"""Run-time settings shared by every chapter: profile, cache folder, seeds, device.

The *quick* profile (default) is offline and small; the *full* profile downloads ImageNet
weights and tensorflow-datasets. Choose it with ``CONVVIZ_PROFILE=full`` or
``set_profile("full")`` from a notebook's parameters cell.
"""

import os
import random
from pathlib import Path

import numpy as np

from . import _backends, _tf
from ._tf import keras

PROFILES = ("quick", "full")
_profile = None


def profile():
    """Return the active profile name, ``"quick"`` or ``"full"``."""
    chosen = _profile or os.environ.get("CONVVIZ_PROFILE", "quick")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"Unknown profile {chosen!r} (from CONVVIZ_PROFILE or set_profile); "
            f"valid profiles are {', '.join(PROFILES)}."
        )
    return chosen


def set_profile(name):
    """Select the profile for this process (overrides ``CONVVIZ_PROFILE``); returns it."""
    global _profile
    if name is not None and str(name).strip().lower() not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; valid profiles are {', '.join(PROFILES)}.")
    _profile = None if name is None else str(name).strip().lower()
    return profile()


def is_full():
    """True when the full (online) profile is active."""
    return profile() == "full"


def cache_dir():
    """The folder where trained models are cached (``CONVVIZ_CACHE``, default ``~/.cache/convviz``).

    Created on first use.
    """
    path = Path(os.environ.get("CONVVIZ_CACHE", Path.home() / ".cache" / "convviz")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed=0, deterministic=True):
    """Seed Python, NumPy and Keras (and so its backend); optionally ask for deterministic ops
    (TensorFlow has a switch for them; JAX is deterministic already).

    Deterministic ops make a training run repeatable on the same machine, at some cost in speed
    on a GPU. Returns the seed.
    """
    random.seed(seed)
    np.random.seed(seed)
    _tf.preload_tensorflow()  # Keras seeds tf.random wherever TensorFlow is installed
    keras.utils.set_random_seed(seed)
    if deterministic:
        _backends.deterministic()
    return seed


def device_summary():
    """One line naming the Keras backend (TensorFlow, JAX, PyTorch) and the device it runs on: the
    GPU(s) by name, or the CPU. Choose the backend with ``KERAS_BACKEND`` before Keras is
    imported (see the setup page)."""
    return _backends.device_summary()
