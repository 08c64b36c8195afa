"""The student version of the exercises: no solution in it, and every check cell fails cleanly.

``tools/make_student_version.py`` (run as instructors run it) writes the student version of
notebooks/05_exercises.ipynb into a temporary folder; nbclient executes it with errors allowed.
Each check cell must stop with the grader's "not implemented yet" AssertionError; the only
other errors allowed are the stubs' own NotImplementedError, in cells that use the student's
functions. The kernel loads ShapesNet from CONVVIZ_CACHE (trained by the training chapter under
`make test`; trained once into the session cache otherwise).
"""

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from toc_files import ROOT

BOOK = ROOT / "notebooks" / "05_exercises.ipynb"
TOOL = ROOT / "tools" / "make_student_version.py"


def _tags(cell):
    return cell.metadata.get("tags", [])


def _is_check(cell):
    return cell.cell_type == "code" and "checks.check_" in cell.source


@pytest.fixture(scope="module")
def book():
    return nbformat.read(BOOK, as_version=4)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    subprocess.run([sys.executable, str(TOOL), str(BOOK), "-o", str(folder)], check=True,
                   capture_output=True, text=True)
    return nbformat.read(folder / BOOK.name, as_version=4)


@pytest.fixture(scope="module")
def executed(student, tmp_path_factory):
    notebook = nbformat.from_dict(student)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()
    return notebook


def _errors(cell):
    return [out for out in cell.get("outputs", []) if out.output_type == "error"]


def test_the_book_has_a_stub_and_a_solution_per_check(book):
    checks = sum(_is_check(cell) for cell in book.cells)
    stubs = [cell for cell in book.cells if "student" in _tags(cell)]
    solutions = [cell for cell in book.cells if "solution" in _tags(cell) and cell.cell_type == "code"]
    assert checks >= 4
    assert len(stubs) == len(solutions) >= checks
    for stub in stubs:
        assert "remove-cell" in _tags(stub), "stubs are hidden on the site"
    for solution in solutions:
        assert "hide-input" in _tags(solution), "solutions sit in a toggle on the site"


def test_no_solution_leaks_into_the_student_version(book, student):
    assert not [cell for cell in student.cells if "solution" in _tags(cell)]
    kept = "\n".join(cell.source for cell in book.cells if "solution" not in _tags(cell))
    text = "\n".join(cell.source for cell in student.cells)
    for cell in book.cells:
        if "solution" not in _tags(cell):
            continue
        # Lines a solution shares with the rest of the book (a def line, a docstring) may stay.
        own = [line.strip() for line in cell.source.splitlines() if line.strip() and line.strip() not in kept]
        leaked = [line for line in own if line in text]
        assert not leaked, f"solution lines in the student version: {leaked}"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "outputs could show a solution"


def test_stubs_are_visible_and_marked(student):
    stubs = [cell for cell in student.cells if "student" in _tags(cell)]
    assert stubs
    for stub in stubs:
        assert "remove-cell" not in _tags(stub)
        assert "YOUR CODE HERE" in stub.source or "YOUR ANSWER" in stub.source


def test_every_check_cell_raises_not_implemented(executed):
    checks = [cell for cell in executed.cells if _is_check(cell)]
    assert len(checks) >= 4
    for cell in checks:
        errors = _errors(cell)
        assert len(errors) == 1 and errors[0].ename == "AssertionError", (cell.source, errors)
        assert "not implemented yet" in errors[0].evalue


def test_nothing_else_fails_unexpectedly(executed):
    for cell in executed.cells:
        if cell.cell_type != "code" or _is_check(cell):
            continue
        unexpected = [f"{out.ename}: {out.evalue}" for out in _errors(cell) if out.ename != "NotImplementedError"]
        assert not unexpected, (cell.source, unexpected)
    ran = [cell for cell in executed.cells if cell.cell_type == "code" and not _errors(cell)]
    assert any("parameters" in _tags(cell) for cell in ran), "the set-up cells must run in the student version"
