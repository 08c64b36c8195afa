"""The package's modules form layers, each importing only its own layer or those below, and no
import circle, counting imports inside functions (DESIGN.md, "Layers of the package").

The imports are read from the source with ``ast`` (nothing is imported), so a circle held open
only by an import inside a function is found as surely as one at the top of a module.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = "convviz_helpers"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# DESIGN.md's table, bottom to top. A module belongs to the row naming it or its package; a new
# module needs a row here (the test says so), which is where its layer is decided.
LAYERS = {
    "ground": ("_tf", "_backends", "config", "inputs", "input_range", "layers", "downloads",
               "torch_pickle", "imagenet"),
    "core": ("gradients",),
    "methods and zoo": ("cam", "perturbation", "integrated_gradients", "activations", "filters",
                        "metrics", "models", "efficientnet_lite",
                        "shapesnet", "digitsnet", "trained", "training", "data", "shortcuts"),
    "teaching": ("plotting", "checks", "glue", "export"),
}
# The libraries a Keras backend brings, and who may import them (CONTRIBUTING.md, "Backends"):
# the backend modules; ``_tf``, which imports TensorFlow quietly (its C++ start-up noise would
# land in notebooks) and hands it out as ``tf``; and the ``tf.data`` pipelines that take ``tf``
# from it, which are TensorFlow by nature on every backend.
BACKEND_LIBRARIES = ("tensorflow", "jax", "jaxlib", "torch")
BACKEND_MODULES = f"{PACKAGE}._backends"
MAY_IMPORT_BACKEND_LIBRARIES = {f"{PACKAGE}._tf"}
TF_DATA_PIPELINES = {f"{PACKAGE}.training", f"{PACKAGE}.data._tfds"}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}
LAYER_NAMES = list(LAYERS)


def sources(root=ROOT, package=PACKAGE):
    """``{module name: (source text, is a package)}`` for every .py file under ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join((package, *(parts[:-1] if is_package else parts)))
        found[name] = (path.read_text(), is_package)
    return found


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(modules):
    """``{module: {imported module of the package, ...}}`` from ``sources()``-shaped input.

    Every ``import`` and ``from ... import`` anywhere in a module counts (top level, functions,
    classes), relative or absolute. ``from p import n`` counts as importing ``p.n`` where that is
    a module, else ``p``; importing a module also runs the packages above it, so those count too,
    except the packages the importer itself sits in.
    """
    graph = {}
    for name, (text, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                for alias in node.names:
                    child = f"{origin}.{alias.name}"
                    targets.add(child if child in modules else origin)
        edges = set()
        for target in targets:
            if target not in modules:
                continue
            for module in {target} | _ancestors(target):
                if module in modules and module != name and module not in _ancestors(name):
                    edges.add(module)
        graph[name] = edges
    return graph


def backend_library_imports(modules, package=PACKAGE):
    """``{module: [what it imports of a backend library, ...]}`` from ``sources()``-shaped input,
    modules that import none left out.

    Counts ``import x`` / ``from x import ...`` anywhere in a module (functions included),
    ``importlib.import_module("x")`` / ``__import__("x")`` with a literal name, and TensorFlow
    taken from the package's ``_tf`` (``from ._tf import tf``, ``_tf.tf``) as ``"tf from _tf"``.
    """
    shim = f"{package}._tf"

    def library(name):
        return name if name.split(".")[0] in BACKEND_LIBRARIES else None

    found = {}
    for name, (text, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        hits = []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                hits += [alias.name for alias in node.names if library(alias.name)]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    origin = ".".join(base[:len(base) - (node.level - 1)] + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                if library(origin):
                    hits.append(origin)
                elif origin == shim and any(alias.name == "tf" for alias in node.names):
                    hits.append("tf from _tf")
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in ("import_module", "__import__") and library(str(node.args[0].value)):
                    hits.append(str(node.args[0].value))
            elif (isinstance(node, ast.Attribute) and node.attr == "tf" and isinstance(node.value, ast.Name)
                  and node.value.id == "_tf"):
                hits.append("tf from _tf")
        if hits:
            found[name] = sorted(set(hits))
    return found


def find_cycle(graph):
    """One import circle as a list ``[a, b, ..., a]``, or None when there is none."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def layer_of(module, package=PACKAGE, rank=RANK):
    """The rank (0 = ground) of ``module``, from its first name below the package; None if the
    table has no row for it (the package's own ``__init__`` imports nothing and has rank -1)."""
    if module == package:
        return -1
    first = module[len(package) + 1:].split(".")[0]
    return rank.get(first)


def upward_imports(graph, package=PACKAGE, rank=RANK):
    """``[(importer, imported)]`` where a module imports from a layer above its own."""
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if layer_of(b, package, rank) > layer_of(a, package, rank))


def test_every_module_has_a_layer():
    graph = import_graph(sources())
    missing = sorted(m for m in graph if layer_of(m) is None)
    assert not missing, (f"Modules without a row in LAYERS ({', '.join(missing)}): add each to the "
                         "layer it belongs to, here and in DESIGN.md's table.")


def test_no_import_circle():
    cycle = find_cycle(import_graph(sources()))
    assert cycle is None, "Import circle: " + " -> ".join(cycle)


def test_each_module_imports_only_its_layer_or_below():
    bad = upward_imports(import_graph(sources()))
    shown = [f"{a} ({LAYER_NAMES[layer_of(a)]}) imports {b} ({LAYER_NAMES[layer_of(b)]})" for a, b in bad]
    assert not bad, "Imports from a higher layer:\n" + "\n".join(shown)


def test_only_the_backend_modules_import_a_backend_library():
    """tensorflow, jax and torch are imported by ``_backends/`` only, beside ``_tf`` (the quiet
    import) and the ``tf.data`` pipelines that take ``tf`` from it."""
    bad = {}
    for module, hits in backend_library_imports(sources()).items():
        if module == BACKEND_MODULES or module.startswith(BACKEND_MODULES + "."):
            continue
        if module in MAY_IMPORT_BACKEND_LIBRARIES:
            continue
        if module in TF_DATA_PIPELINES and hits == ["tf from _tf"]:
            continue
        bad[module] = hits
    assert not bad, ("Backend libraries imported outside convviz_helpers/_backends/ (put the code in "
                     "the backend's module there, or use keras.ops):\n"
                     + "\n".join(f"{module}: {', '.join(hits)}" for module, hits in sorted(bad.items())))


def test_the_backend_library_reader_sees_every_spelling():
    modules = {
        "pkg": ("", True),
        "pkg._tf": ("import tensorflow\n", False),
        "pkg.a": ("def f():\n    import jax.numpy as jnp\n", False),
        "pkg.b": ("from torch import nn\n", False),
        "pkg.c": ("from ._tf import keras, tf\n", False),
        "pkg.sub": ("", True),
        "pkg.sub.d": ("from .. import _tf\nx = _tf.tf\n", False),
        "pkg.sub.e": ("import importlib\nimportlib.import_module('tensorflow.data')\n", False),
        "pkg.f": ("from ._tf import keras\nimport numpy\nimport jaxtyping\n", False),
    }
    assert backend_library_imports(modules, "pkg") == {
        "pkg._tf": ["tensorflow"], "pkg.a": ["jax.numpy"], "pkg.b": ["torch"], "pkg.c": ["tf from _tf"],
        "pkg.sub.d": ["tf from _tf"], "pkg.sub.e": ["tensorflow.data"],
    }


def test_the_reader_sees_imports_inside_functions_and_both_spellings():
    """The reader itself, on a tiny synthetic package: a circle made only by an import inside a
    function is found and named; relative and absolute spellings resolve to the same module."""
    modules = {
        "pkg": ("", True),
        "pkg.low": ("def f():\n    from pkg.high import g\n    return g\n", False),
        "pkg.high": ("from . import low\n", False),
        "pkg.sub": ("from .part import x\n", True),
        "pkg.sub.part": ("from ..low import f\nx = 1\n", False),
    }
    graph = import_graph(modules)
    assert graph["pkg.low"] == {"pkg.high"}
    assert graph["pkg.high"] == {"pkg.low"}
    assert graph["pkg.sub"] == {"pkg.sub.part"}
    assert graph["pkg.sub.part"] == {"pkg.low"}  # its own package sub is not an import of it
    cycle = find_cycle(graph)
    assert cycle in (["pkg.high", "pkg.low", "pkg.high"], ["pkg.low", "pkg.high", "pkg.low"])
    del modules["pkg.low"]
    modules["pkg.low"] = ("x = 1\n", False)
    assert find_cycle(import_graph(modules)) is None


def test_importing_a_submodule_counts_its_package():
    """``from ..core import _backend_module`` runs ``core/__init__`` first: a ground module doing
    that imports the core, and the layer check says so."""
    modules = {
        "pkg": ("", True),
        "pkg.config": ("def f():\n    from .core import _tf_side\n", False),
        "pkg.core": ("from . import _tf_side\n", True),
        "pkg.core._tf_side": ("x = 1\n", False),
    }
    graph = import_graph(modules)
    assert graph["pkg.config"] == {"pkg.core", "pkg.core._tf_side"}
    rank = {"config": 0, "core": 1}
    assert upward_imports(graph, "pkg", rank) == [("pkg.config", "pkg.core"), ("pkg.config", "pkg.core._tf_side")]


@pytest.mark.parametrize("module", ["layers", "input_range", "inputs", "config", "_backends"])
def test_ground_modules_import_nothing_above_ground(module):
    graph = import_graph(sources())
    above = sorted(m for m in graph[f"{PACKAGE}.{module}"] if layer_of(m) > 0)
    assert not above, f"{module} imports {above}"
