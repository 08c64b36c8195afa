"""The package installs the way the book promises: light on Colab, pinned here, fully documented."""

import os
import re
import subprocess
import sys
import tomllib

import pytest

import convviz_helpers
from toc_files import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# The modules DESIGN.md's public API contract names; chapters reach them as cv.<name>.
CONTRACT_MODULES = [
    "config", "data", "models", "activations", "filters", "cam", "metrics", "plotting", "checks",
]


def _requirement_name(line):
    return re.split(r"[<>=!~;\[ @]", line, maxsplit=1)[0].strip().lower()


def test_version_matches_pyproject():
    assert convviz_helpers.__version__ == PYPROJECT["project"]["version"]


def test_runtime_dependencies_leave_colab_tensorflow_alone():
    names = {_requirement_name(dep) for dep in PYPROJECT["project"]["dependencies"]}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tf-keras"}, names


def test_requirements_are_pinned():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    # Jupyter Book 2 ignores _config.yml and _toc.yml: the one range kept on purpose.
    assert "jupyter-book>=1.0.4.post1,<2" in lines
    unpinned = [line for line in lines if "==" not in line and not line.startswith("jupyter-book")]
    assert not unpinned, f"requirements.txt entries without an == pin: {unpinned}"
    assert "tensorflow==2.21.0" in lines


def test_import_is_light():
    # Submodules load on first use, so `import convviz_helpers` alone must not start TensorFlow.
    code = "import sys, convviz_helpers; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_backend_modules_load_lazily(backend):
    # The gradient core imports only the chosen backend's module: never torch on TensorFlow or JAX.
    code = ("import sys, convviz_helpers.gradients, convviz_helpers.cam, convviz_helpers.filters; "
            "print('torch' in sys.modules)")
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_contract_modules_reachable_as_attributes():
    missing = [name for name in CONTRACT_MODULES if name not in convviz_helpers._SUBMODULES]
    assert not missing, f"convviz_helpers lacks the contract's modules: {missing}"
    assert callable(convviz_helpers.config.profile)


def test_api_reference_documents_every_public_module():
    api = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"automodule:: convviz_helpers\.(\w+)", api))
    public = set(convviz_helpers._SUBMODULES)
    assert documented == public, (
        f"book/api.md: add {sorted(public - documented)}, remove {sorted(documented - public)}"
    )
