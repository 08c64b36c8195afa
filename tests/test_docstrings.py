"""Every public docstring renders in the book's API reference (book/api.md, autodoc + napoleon).

The book build (`make book`, warnings as errors) is the final word; this check gives the same
verdict in a second, naming the function. Usual fixes: write code-like text in double
backticks (``|d score / d pixel|``, ``(n, *shape)``), since bare ``|x|`` is an RST
substitution and a bare ``*`` starts emphasis.
"""

import importlib
import inspect
import io

import convviz_helpers
import docutils.core
from sphinx.ext.napoleon import Config
from sphinx.ext.napoleon.docstring import GoogleDocstring, NumpyDocstring

_NAPOLEON = Config()


def _documented_objects():
    """(qualified name, docstring) for what `automodule` with `:members:` shows."""
    for name in convviz_helpers._SUBMODULES:
        module = importlib.import_module(f"convviz_helpers.{name}")
        yield name, module.__doc__
        # A package's ``__all__`` names what it re-exports from its private modules; autodoc
        # shows those members too (and, without ``__all__``, only what the module defines).
        exported = set(getattr(module, "__all__", ()))
        for attr, obj in vars(module).items():
            if attr.startswith("_") or (attr not in exported and getattr(obj, "__module__", None) != module.__name__):
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{name}.{attr}", obj.__doc__
            if inspect.isclass(obj):
                for method, member in vars(obj).items():
                    if not method.startswith("_") and inspect.isfunction(member):
                        yield f"{name}.{attr}.{method}", member.__doc__


def _rst_problems(docstring):
    # What autodoc hands to docutils: the docstring after napoleon's Google/NumPy rewriting.
    text = str(NumpyDocstring(str(GoogleDocstring(inspect.cleandoc(docstring), _NAPOLEON)), _NAPOLEON))
    messages = io.StringIO()
    docutils.core.publish_doctree(
        text, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": messages}
    )
    return [line for line in messages.getvalue().splitlines() if "(WARNING" in line or "(ERROR" in line]


def test_public_docstrings_are_valid_rst():
    bad = {}
    for qualname, docstring in _documented_objects():
        if docstring and (problems := _rst_problems(docstring)):
            bad[qualname] = problems
    assert not bad, "Docstrings the API reference cannot render:\n" + "\n".join(
        f"  convviz_helpers.{name}: {'; '.join(p.split(': ', 1)[-1] for p in problems)}"
        for name, problems in bad.items()
    )
