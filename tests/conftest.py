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

os.environ.setdefault("MPLBACKEND", "Agg")

_session_cache = None


def pytest_configure(config):
    global _session_cache
    if "CONVVIZ_CACHE" not in os.environ:
        _session_cache = tempfile.mkdtemp(prefix="convviz-test-cache-")
        os.environ["CONVVIZ_CACHE"] = _session_cache


def pytest_unconfigure(config):
    if _session_cache:
        shutil.rmtree(_session_cache, ignore_errors=True)
        os.environ.pop("CONVVIZ_CACHE", None)
