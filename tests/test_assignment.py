"""The course assignment, built and graded the way an instructor does it with Otter-Grader.

``tools/build_assignment.py`` runs ``otter assign`` on notebooks/05_exercises.ipynb (the Otter
master notebook) into a temporary folder; ``otter run`` (no Docker) then grades, with the
autograder zip:

- the solution notebook (Otter's autograder notebook): full marks;
- the student notebook as handed out: zero, and every question's feedback says why;
- a student notebook with typical wrong answers (a batch-wide gradient normalisation, the
  gradient of the softmax probability instead of the logit, Grad-CAM without its ReLU, a
  transposed heatmap): the points of the right answers only, and feedback carrying the graders'
  hints for those mistakes.

A last test runs a student notebook alone in an empty folder, as on Colab, and checks that
``grader.check`` works there. The notebooks load the ShapesNet weights shipped with the
package, so no grading run trains anything.

Slow (about two minutes: each grading runs the whole notebook in a fresh kernel).
"""

import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from otter_grading import otter_run
from toc_files import ROOT

# The exercises are a TensorFlow chapter (students write a GradientTape).
pytestmark = [pytest.mark.assignment, pytest.mark.tensorflow_only]

sys.path.insert(0, str(ROOT / "tools"))
import build_assignment  # noqa: E402  (tools/ is not a package)

MASTER = ROOT / "notebooks" / "05_exercises.ipynb"
POINTS = {"q1": 2, "q2": 2, "q3": 2, "q4": 2, "q5": 2, "q6": 2, "q7": 1}

# One typical mistake per gradient and Grad-CAM question; q1, q6 and q7 are answered right.
WRONG_ANSWERS = {
    "ascent_step": '''
def ascent_step(images, grads, step_size):
    rms = np.sqrt(np.mean(np.square(grads)))  # one RMS for the whole batch
    return np.clip(images + step_size * grads / (rms + 1e-12), 0.0, 1.0)
''',
    "layer_gradients": '''
def layer_gradients(model, images, classes, layer):
    features = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        acts, probabilities = features(images, training=False)
        score = tf.gather(probabilities, classes, batch_dims=1)  # the softmax output, not the logit
    return acts.numpy(), tape.gradient(score, acts).numpy()
''',
    "class_map": '''
def class_map(activations, gradients):
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return (weights * activations).sum(axis=-1)  # no ReLU
''',
    "to_heatmaps": '''
def to_heatmaps(maps, size):
    import cv2
    maps = np.stack([cv2.resize(m, size) for m in maps])  # cv2 wants (width, height)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1.0)
''',
}
WRONG_SCORES = {"q1": 2, "q2": 0, "q3": 0, "q4": 0, "q5": 0, "q6": 2, "q7": 1}
HINTS = {
    "q2": "you normalised the gradient across the batch",
    "q3": "you took the gradient of the softmax probability, not of the logit",
    "q4": "values below 0: did you apply the ReLU?",
    "q5": "the heatmap looks transposed",
}


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    """(student notebook, autograder notebook, autograder zip) built by the instructors' tool."""
    from convviz_helpers import models

    models.shapes_model()  # the shipped weights: loads in a second, trains nothing
    output = tmp_path_factory.mktemp("assignments")
    student, autograder_zip = build_assignment.build(MASTER, output)
    return student, student.parent.parent / "autograder" / MASTER.name, autograder_zip


def _answer_cells(notebook):
    """The cells a student writes in: Otter tags them as answers in the student notebook and as
    solutions in the autograder's."""
    tags = {"otter_answer_cell", "otter_assign_solution_cell"}
    return [cell for cell in notebook.cells
            if cell.cell_type == "code" and tags & set(cell.metadata.get("tags", []))]


def _defines(cell):
    found = re.match(r"\s*(?:def (\w+)|(\w+) =)", cell.source)
    return found.group(1) or found.group(2)


def _answered(student, solution, wrong):
    """The student notebook with each answer cell taken from ``wrong`` (by the name it defines)
    or else from the solution notebook."""
    notebook = nbformat.read(student, as_version=4)
    solutions = {_defines(cell): cell.source for cell in _answer_cells(nbformat.read(solution, as_version=4))}
    for cell in _answer_cells(notebook):
        name = _defines(cell)
        cell.source = wrong.get(name, solutions[name]).strip()
    return notebook


def grade(notebook, autograder_zip, folder):
    """``otter run`` on ``notebook`` (a path or a NotebookNode) in ``folder``: {question: (score,
    max score, feedback)}."""
    folder.mkdir()
    submission = folder / MASTER.name
    if isinstance(notebook, Path):
        shutil.copyfile(notebook, submission)
    else:
        nbformat.write(notebook, submission)
    scores = otter_run(submission, autograder_zip, folder, timeout=900)
    return {name: result for name, result in scores.items() if name in POINTS}


def test_the_student_notebook_has_no_solution(assignment):
    student, solution, _ = assignment
    notebook = nbformat.read(student, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    book = nbformat.read(MASTER, as_version=4)
    for cell in book.cells:
        if "hide-input" not in cell.metadata.get("tags", []):
            continue
        # Solution lines, not the def line and docstring that the stub keeps.
        body = re.split(r"# BEGIN SOLUTION\n", cell.source)[-1].split("# END SOLUTION")[0]
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        if cell.source.lstrip().startswith("BEST_LAYER"):
            lines = ["max(rates, key=rates.get)"]
        assert lines and not [line for line in lines if line in text], f"solution left in: {lines}"
    assert len(_answer_cells(notebook)) == len(POINTS)
    assert all(cell.source.rstrip().endswith("...") for cell in _answer_cells(notebook))
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert "What the measurement says" not in text  # the conclusion, a solution in words
    assert "colab-badge" not in text  # it would open the book's notebook, solutions included
    assert "hidden=True" not in text  # the embedded tests are the public ones
    public = sorted(path.name for path in (student.parent / "tests").glob("*.py"))
    assert public == ["q1.py", "q2.py", "q3.py", "q4.py", "q5.py", "q6.py"]  # q7's only test is hidden


def test_the_solution_gets_full_marks(assignment, tmp_path):
    _, solution, autograder_zip = assignment
    scores = grade(solution, autograder_zip, tmp_path / "solution")
    assert {q: score for q, (score, _, _) in scores.items()} == POINTS
    assert {q: maximum for q, (_, maximum, _) in scores.items()} == POINTS


def test_the_untouched_student_notebook_gets_zero(assignment, tmp_path):
    student, _, autograder_zip = assignment
    scores = grade(student, autograder_zip, tmp_path / "untouched")
    assert {q: score for q, (score, _, _) in scores.items()} == dict.fromkeys(POINTS, 0)
    assert sum(maximum for _, maximum, _ in scores.values()) == sum(POINTS.values())
    for question, (_, _, feedback) in scores.items():
        assert "returns nothing yet" in feedback or "no answer yet" in feedback, (question, feedback)


def test_typical_mistakes_get_partial_marks_and_their_hints(assignment, tmp_path):
    student, solution, autograder_zip = assignment
    scores = grade(_answered(student, solution, WRONG_ANSWERS), autograder_zip, tmp_path / "wrong")
    assert {q: score for q, (score, _, _) in scores.items()} == WRONG_SCORES
    for question, hint in HINTS.items():
        assert hint in scores[question][2], (question, scores[question][2])
    for question in ("q1", "q6", "q7"):
        assert "All test cases passed" in scores[question][2]


# Otter decides it runs on Colab from the name of the IPython shell (google.colab._shell.Shell
# there); on Colab it insists on test files in tests/, since it cannot read the notebook file.
PRETEND_COLAB = """
import otter.check.utils


class ColabShell:
    def __str__(self):
        return "<google.colab._shell.Shell object>"


otter.check.utils.get_ipython = ColabShell
"""


def test_a_student_notebook_checks_itself_alone_as_on_colab(assignment, tmp_path):
    """Only the .ipynb in an empty folder, with Otter believing it runs on Colab: the set-up
    cell writes the public tests, and grader.check reports the right answer passed and the
    wrong one with its hint. (The Colab install cell itself does nothing here: it looks for
    google.colab among the imported modules, and it is not there.)"""
    student, solution, _ = assignment
    notebook = _answered(student, solution, {"class_map": WRONG_ANSWERS["class_map"]})
    setup = next(i for i, cell in enumerate(notebook.cells) if "otter-setup" in cell.metadata.get("tags", []))
    notebook.cells.insert(setup, nbformat.v4.new_code_cell(PRETEND_COLAB))
    notebook.cells.insert(setup + 2, nbformat.v4.new_code_cell("print(grader.interpreter)"))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = {}
    for cell in notebook.cells:
        found = re.fullmatch(r'grader\.check\("(q\d)"\)', cell.source.strip())
        if found:
            outputs[found.group(1)] = "".join(
                out.get("text", "") + str(out.get("data", {}).get("text/plain", "")) for out in cell.outputs)
    assert notebook.cells[setup + 2].outputs[0].text.strip() == "IPythonInterpreter.COLAB"
    assert sorted(outputs) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert all("passed" in outputs[q] for q in ("q1", "q3", "q5")), outputs
    assert "did you apply the ReLU?" in outputs["q4"], outputs["q4"]
    assert sorted(path.name for path in (tmp_path / "tests").glob("*.py")) == [f"q{i}.py" for i in range(1, 7)]
