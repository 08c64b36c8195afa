"""Shared set-up for the test suite.

- Figures are drawn off-screen (Agg): tests run on machines without a display.
- Trained models go to a cache of this test session, unless CONVVIZ_CACHE is already set
  (`make test` points it at _build/cache, where the training chapter has just trained the
  book's model under nbval, so the unit tests reuse it instead of training again). Either way
  a test never reads or writes the user's ~/.cache/convviz.
"""

import os
import shutil
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

_session_cache = None
# Keras fixes its backend per process; `make test` runs the suite once per backend.
_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def pytest_configure(config):
    global _session_cache
    if "CONVVIZ_CACHE" not in os.environ:
        _session_cache = tempfile.mkdtemp(prefix="convviz-test-cache-")
        os.environ["CONVVIZ_CACHE"] = _session_cache


def pytest_unconfigure(config):
    if _session_cache:
        shutil.rmtree(_session_cache, ignore_errors=True)
        os.environ.pop("CONVVIZ_CACHE", None)


def pytest_collection_modifyitems(config, items):
    # Tests of what is TensorFlow by design (the exercises' GradientTape, whole-notebook runs
    # of chapters that run on TensorFlow) run once, in the TensorFlow pass.
    if _BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow only; this run uses Keras's {_BACKEND} backend")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty model cache for one test, and no model held in memory before or after it."""
    from convviz_helpers import trained

    monkeypatch.setenv("CONVVIZ_CACHE", str(tmp_path))
    trained.clear_memory()
    yield tmp_path
    trained.clear_memory()
