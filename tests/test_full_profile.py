"""The full profile's cells, run once, offline and small (issue 14, item 4).

Every chapter cell that starts with ``if PROFILE == "full":`` (VGG16, InceptionV3, cats_vs_dogs,
tf_flowers, longer training) is what a Colab user with a GPU runs, and nothing else executes
it. This test runs each of them once, in a fresh kernel with ``CONVVIZ_PROFILE=full``, so a typo
or an API change there fails here instead of in a reader's notebook. It proves the code path,
not the accuracy: the numbers it produces mean nothing.

How a smoke notebook is built from a chapter (``smoke_notebook``):

1. an injected first cell installs the stand-ins (``STAND_INS``): the network is blocked (any
   socket connection fails as an unresolvable host would, so nothing downloads, ever);
   ``convviz_helpers.models.pretrained`` is wrapped to build every model with random weights
   (``weights=None``); tensorflow-datasets is mocked with ``tfds.testing.mock_data`` under
   ``MockPolicy.USE_CODE`` (the dataset builders' code ships in the package, so features and
   class names come from it; no ``dataset_info.json`` is read or fetched) and every builder
   counts as prepared, so ``data.load_dataset`` takes its offline path and gets a few random
   images. The package itself never falls back to anything: only this harness swaps things.
2. the chapter's cells up to and including its ``parameters`` cell, unchanged;
3. an injected cell that sets the chapter's parameters to tiny values (``SMOKE``); it fails if
   a name is not defined by the parameters cell, so the table cannot drift from the chapters;
4. every full-profile cell of the chapter, unchanged, in order (they only use what the
   parameters cell defines and what earlier full-profile cells made);
5. an injected last cell that checks ``PROFILE == "full"`` and reports which models and
   datasets the stand-ins served.

The kernel gets ``CONVVIZ_PROFILE=full`` and empty temporary folders for ``CONVVIZ_CACHE``,
``KERAS_HOME`` and ``TFDS_DATA_DIR``. A second test runs chapters' first full-profile cells
with the network blocked and no stand-ins: they must stop within seconds with the package's
readable ``DownloadError``, not hang in a library's retry loop. ``test_full_cells_are_covered``
checks, without a kernel, that every full-profile cell of every chapter is found and that the
downloads in them go through the package's guarded functions.

Quick-profile chapters are untouched: the parameters' quick values stay what the stored outputs
were computed with, and the full-profile cells do nothing there.
"""

import ast
import json
import os
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from toc_files import ROOT

NOTEBOOKS = ROOT / "notebooks"

# Runs in the default `pytest` run (so in `make test`): about two minutes on two CPU cores.
# The chapters run on TensorFlow (the default backend); one pass of this smoke run is enough.
pytestmark = [pytest.mark.full_profile, pytest.mark.tensorflow_only]

# Per chapter: the parameters set right after its parameters cell for the smoke run. Only names
# the parameters cell defines; the values make each full-profile cell do one tiny step of work.
SMOKE = {
    "01_training.ipynb": {
        "BATCH": 4,
        "CD_TRAIN": 8,
        "CD_VAL": 4,
        "CD_SCRATCH_EPOCHS": 1,
        "CD_VGG_EPOCHS": 1,
        "FL_HEAD_EPOCHS": 1,
        "FL_TUNE_EPOCHS": 1,
    },
    "02_activations.ipynb": {
        "VGG_PHOTOS": ["chelsea", "coffee"],
    },
    "03_filters.ipynb": {
        "VGG_FILTERS": 2,
        "VGG_STEPS": 2,
        "DLP_FILTERS": 2,
        "DLP_STEPS": 2,
    },
    "04_grad_cam.ipynb": {},
}
# Random images each mocked dataset split yields (whatever the slice asked for).
MOCK_EXAMPLES = 8
# Log lines the stand-ins themselves cause (tfds.testing.mock_data reads a deprecated field).
HARNESS_NOISE = ("`TensorInfo.dtype` is deprecated",)
CELL_TIMEOUT = 300  # seconds; the slowest smoke cell takes well under a minute on 2 CPU cores

# The first statement of a full-profile cell (CONTRIBUTING.md), and anything else that names the
# full profile: a cell with the second but not the first would be missed by the harness.
FULL_GUARD = re.compile(r'\Aif PROFILE == "full":\s*$', re.M)
MENTIONS_FULL = re.compile(r"""PROFILE\s*[!=]=\s*["']full["']|\bis_full\s*\(""")
# What a full-profile cell may call to download: the package's guarded functions. Anything that
# reaches the network another way would hang or fail cryptically offline.
GUARDED = {("models", "pretrained"), ("data", "load_dataset")}
UNGUARDED = re.compile(
    r"\btfds\.(load|builder|data_source)\b|\bget_file\b|\burllib\b|\brequests\b|"
    r"\bkeras\.applications\.\w+\("
)

STAND_INS = '''\
# Injected by tests/test_full_profile.py (never part of the book): offline stand-ins.
import contextlib as _contextlib
import socket as _socket
from unittest import mock as _mock

def _no_network(*args, **kwargs):
    raise _socket.gaierror(_socket.EAI_AGAIN, "Temporary failure in name resolution "
                           "(the network is blocked by tests/test_full_profile.py)")

_smoke = _contextlib.ExitStack()
_smoke.enter_context(_mock.patch.object(_socket, "create_connection", _no_network))
_smoke.enter_context(_mock.patch.object(_socket.socket, "connect", _no_network))
_smoke_served = {"pretrained": [], "datasets": []}
'''

MODEL_AND_DATA_STAND_INS = '''\
# ImageNet weights: the same architectures with random weights.
import convviz_helpers.data as _data
import convviz_helpers.models as _models

def _random_weights(name, weights="imagenet", _real=_models.pretrained):
    _smoke_served["pretrained"].append(name)
    return _real(name, weights=None)

def _served(name, *args, _real=_data.load_dataset, **kwargs):
    _smoke_served["datasets"].append(name)
    return _real(name, *args, **kwargs)

_smoke.enter_context(_mock.patch.object(_models, "pretrained", _random_weights))
_smoke.enter_context(_mock.patch.object(_data, "load_dataset", _served))

# tensorflow-datasets: random examples shaped by the builders' own code, no metadata files.
import tensorflow_datasets as _tfds
from tensorflow_datasets.core import dataset_builder as _dataset_builder

_smoke.enter_context(_tfds.testing.mock_data(num_examples={examples},
                                             policy=_tfds.testing.MockPolicy.USE_CODE))
_prepared = _mock.patch.object(_dataset_builder.DatasetBuilder, "is_prepared", lambda self: True)
_smoke.enter_context(_prepared)
None
'''

OVERRIDE = '''\
# Injected by tests/test_full_profile.py: tiny sizes for the smoke run.
_smoke_parameters = {overrides!r}
_undefined = sorted(set(_smoke_parameters) - set(globals()))
assert not _undefined, (f"the parameters cell does not define {{_undefined}}: "
                        "update SMOKE in tests/test_full_profile.py")
globals().update(_smoke_parameters)
'''

REPORT = '''\
# Injected by tests/test_full_profile.py: what ran.
import json as _json
assert PROFILE == "full", f"the kernel ran the {PROFILE!r} profile"
print(_json.dumps(_smoke_served))
'''


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def parameters_index(nb):
    found = [i for i, cell in enumerate(nb.cells) if "parameters" in _tags(cell)]
    assert len(found) == 1, f"expected one cell tagged 'parameters', found {len(found)}"
    return found[0]


def is_full_cell(cell):
    return cell.cell_type == "code" and bool(FULL_GUARD.match(cell.source.lstrip()))


def full_cells(nb):
    return [cell for cell in nb.cells[parameters_index(nb) + 1:] if is_full_cell(cell)]


def chapters_with_full_cells():
    return sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")
                  if full_cells(nbformat.read(path, as_version=4)))


def smoke_notebook(path, overrides, *, stand_ins=True):
    """The notebook the smoke run executes (see the module docstring), and the indices of the
    chapter's full-profile cells in it."""
    nb = nbformat.read(path, as_version=4)
    params = parameters_index(nb)
    first = STAND_INS + ("\n" + MODEL_AND_DATA_STAND_INS.format(examples=MOCK_EXAMPLES) if stand_ins else "")
    cells = [nbformat.v4.new_code_cell(first)]
    cells += [cell for cell in nb.cells[:params + 1] if cell.cell_type == "code"]  # ids kept
    cells.append(nbformat.v4.new_code_cell(OVERRIDE.format(overrides=overrides)))
    start = len(cells)
    cells += full_cells(nb)
    full = list(range(start, len(cells)))
    cells.append(nbformat.v4.new_code_cell(REPORT))
    for cell in cells:
        cell.outputs = []
        cell.execution_count = None
    smoke = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    return smoke, full


def kernel_env(tmp_path):
    env = dict(os.environ)
    for name, folder in (("CONVVIZ_CACHE", "cache"), ("KERAS_HOME", "keras"), ("TFDS_DATA_DIR", "tfds")):
        (tmp_path / folder).mkdir(exist_ok=True)
        env[name] = str(tmp_path / folder)
    env["CONVVIZ_PROFILE"] = "full"
    # Figures are drawn as a reader's notebook draws them (the inline backend renders each one
    # at plt.show()), not discarded by the Agg backend the rest of the test suite uses.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def execute(nb, tmp_path, *, allow_errors=False):
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=allow_errors,
                            record_timing=True, resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=kernel_env(tmp_path))
    return nb


def cell_seconds(cell):
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return float("nan")
    from datetime import datetime

    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def _calls(source):
    """``(module, function, first string argument)`` for each call like ``models.pretrained("x")``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            found.append((node.func.value.id, node.func.attr, first))
    return found


def _assigned(source):
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


# --- without a kernel -----------------------------------------------------------------------


def test_full_cells_are_covered():
    """Every chapter with full-profile cells has smoke parameters, those parameters exist, no
    cell names the full profile without the guard the harness looks for, and full-profile
    cells download only through the package's guarded functions (which fail fast offline)."""
    assert sorted(SMOKE) == chapters_with_full_cells(), (
        "SMOKE in tests/test_full_profile.py must list exactly the chapters with full-profile cells")
    problems = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        params = parameters_index(nb)
        defined = _assigned(nb.cells[params].source)
        missing = sorted(set(SMOKE.get(path.name, {})) - defined)
        if missing:
            problems.append(f"{path.name}: the parameters cell does not define {missing}")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or i == params:
                continue
            if MENTIONS_FULL.search(cell.source) and not is_full_cell(cell):
                problems.append(f"{path.name} cell {cell.get('id')}: names the full profile but does not "
                                'start with `if PROFILE == "full":` (the smoke run would miss it)')
            if is_full_cell(cell):
                if i < params:
                    problems.append(f"{path.name} cell {cell.get('id')}: a full-profile cell before the parameters cell")
                bad = UNGUARDED.findall(cell.source)
                if bad:
                    problems.append(f"{path.name} cell {cell.get('id')}: downloads outside models.pretrained / "
                                    f"data.load_dataset ({bad}); those fail slowly and cryptically offline")
    assert not problems, "\n".join(problems)


# --- the smoke run --------------------------------------------------------------------------


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failure(path, nb, full, error):
    """Which cell of the smoke notebook failed, its source and the error, for the report."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if i in full:
                    what = f"full-profile cell {cell.get('id')}"
                elif i < full[0]:
                    what = "set-up (the injected stand-ins, the Colab cell, the parameters cell or the overrides)"
                else:
                    what = "final check"
                trace = ANSI.sub("", "\n".join(out.get("traceback", [])[-8:]))
                return (f"{path.name}: the {what} failed in the smoke run:\n{cell.source}\n\n"
                        f"{trace or out.get('ename') + ': ' + out.get('evalue')}")
    return f"{path.name}: {error}"


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_full_profile_cells_run(name, tmp_path):
    path = NOTEBOOKS / name
    nb, full = smoke_notebook(path, SMOKE[name])
    assert full, f"{name}: no full-profile cells (remove it from SMOKE)"
    start = time.monotonic()
    failure = None
    try:
        execute(nb, tmp_path)
    except CellExecutionError as error:
        failure = _failure(path, nb, full, error)
    if failure:
        pytest.fail(failure, pytrace=False)
    elapsed = time.monotonic() - start
    for i in full:
        assert nb.cells[i].execution_count is not None, f"{name}: a full-profile cell did not run"
    served = json.loads(nb.cells[-1].outputs[-1]["text"])
    # Every model and dataset the cells ask for by name was served by a stand-in.
    asked = {(module, fn): set() for module, fn in GUARDED}
    for i in full:
        for module, fn, first in _calls(nb.cells[i].source):
            if (module, fn) in asked and first is not None:
                asked[(module, fn)].add(first)
    assert asked[("models", "pretrained")] <= set(served["pretrained"]), served
    assert asked[("data", "load_dataset")] <= set(served["datasets"]), served
    # What a Colab reader would see as noise: warnings written by the full-profile cells (the
    # mock's own deprecation notice from tensorflow-datasets is the harness's, not the book's).
    warned = [line for i in full for out in nb.cells[i].outputs
              if out.get("output_type") == "stream" and out.get("name") == "stderr"
              for line in out["text"].splitlines()
              if "warning" in line.lower() and not any(noise in line for noise in HARNESS_NOISE)]
    assert not warned, f"{name}: full-profile cells print warnings a reader would see:\n" + "\n".join(warned)
    times = ", ".join(f"{cell_seconds(nb.cells[i]):.0f}" for i in full)
    print(f"{name}: {elapsed:.0f} s with the kernel; full-profile cells {times} s; served {served}")


# --- offline, without stand-ins: fail fast and readably ------------------------------------

# One chapter whose first full-profile cell needs ImageNet weights, one whose cells need datasets.
OFFLINE_CHAPTERS = ("01_training.ipynb", "04_grad_cam.ipynb")
FAST = 60  # seconds; tensorflow-datasets alone retries an unreachable host for minutes


@pytest.mark.parametrize("name", OFFLINE_CHAPTERS)
def test_offline_full_cells_fail_fast_with_a_download_error(name, tmp_path):
    path = NOTEBOOKS / name
    nb, full = smoke_notebook(path, SMOKE[name], stand_ins=False)
    nb.cells = nb.cells[:full[0]] + [nb.cells[i] for i in full]  # no report cell
    execute(nb, tmp_path, allow_errors=True)
    for cell in nb.cells[:full[0]]:
        for out in cell.outputs:
            assert out.get("output_type") != "error", f"{name}: set-up failed: {out['ename']}: {out['evalue']}"
    errors = []
    for i in full:
        for out in nb.cells[i].outputs:
            if out.get("output_type") == "error":
                errors.append((i, out))
    assert errors, f"{name}: the full-profile cells ran offline without stand-ins: what did they download?"
    i, first = errors[0]
    assert i == full[0], f"{name}: the first full-profile cell ran offline without an error"
    assert first["ename"] == "DownloadError", f"{name}: {first['ename']}: {first['evalue']}"
    message = first["evalue"]
    assert message.startswith("Could not download ") and ("TFDS_DATA_DIR" in message or "~/.keras/models" in message), message
    for i, out in errors:
        assert cell_seconds(nb.cells[i]) < FAST, f"{name}: a full-profile cell took {cell_seconds(nb.cells[i]):.0f} s to fail offline"
