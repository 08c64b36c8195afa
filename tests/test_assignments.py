"""The four chapter assignments (assignments/*.ipynb), built and graded as an instructor does.

For each master notebook, ``tools/build_assignment.py`` runs ``otter assign``; ``otter run`` (no
Docker) then grades, with the autograder zip, three notebooks: the solutions (full marks on the
autograded question), the student notebook untouched (zero, "returns nothing yet"), and the
student notebook with one plausible wrong answer (zero, and the grader's hint in the feedback;
every hint of every grader is tested directly in tests/test_checks_assignments.py). The written
answers (Otter's manual questions) are checked in what Otter gives graders: the notebook that
``otter export --filtering`` keeps, read here with Otter's own filter (its PDF needs LaTeX or a
Playwright Chromium, neither available offline).

All twelve gradings run once per session, two at a time (each is a fresh kernel that mostly
waits on TensorFlow's import); about three minutes on a 2-core CPU.
"""

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from otter_grading import otter_run
from toc_files import ROOT

pytestmark = [pytest.mark.assignment, pytest.mark.tensorflow_only]

sys.path.insert(0, str(ROOT / "tools"))
import build_assignment  # noqa: E402  (tools/ is not a package)

# name: (autograded points {question: points}, written questions {question: points}, the wrong
# answer (the answer cell's new source) and the hint its feedback must carry)
ASSIGNMENTS = {
    "01_shortcut": ({"q1": 2}, {"q2": 1, "q3": 3}, '''
def class_accuracy(labels, predicted, num_classes):
    return np.array([np.mean(labels[predicted == k] == k) for k in range(num_classes)])  # precision
''', "that is each class's precision"),
    "02_activations": ({"q1": 2}, {"q2": 1, "q3": 3}, '''
def class_means(maps, labels, num_classes):
    per_image = maps.mean(axis=(1, 2))
    return np.stack([per_image[labels == k].mean(axis=0) for k in range(num_classes)]).T
''', "your table is transposed"),
    "03_filters": ({"q1": 2}, {"q2": 1, "q3": 3}, '''
def shift_retention(model, layer, channel, patterns, shift):
    def score(images):
        return filters.filter_scores(model, layer, images, [channel])[:, 0]

    return score(np.roll(patterns, shift, axis=0)) / score(patterns)
''', "you rolled along axis 0, the batch"),
    "04_grad_cam": ({"q1": 2}, {"q2": 1, "q3": 3}, '''
def rank_correlation(first, second):
    return np.array([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(first, second)])
''', "that is Pearson's correlation"),
}
MASTERS = {path.stem: path for path in build_assignment.MASTERS if path.parent.name == "assignments"}


def test_every_master_is_covered():
    assert sorted(MASTERS) == sorted(ASSIGNMENTS)


def _answer_cell(notebook):
    """The one code cell a student writes in (Otter tags it in both versions)."""
    tags = {"otter_answer_cell", "otter_assign_solution_cell"}
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and tags & set(cell.metadata.get("tags", []))]
    assert len(cells) == 1
    return cells[0]


def _grade(notebook, autograder_zip, folder, name):
    """``otter run`` on ``notebook`` in ``folder``: {test name: (score, max score, feedback)}."""
    folder.mkdir(parents=True)
    submission = folder / f"{name}.ipynb"
    nbformat.write(notebook, submission)
    return otter_run(submission, autograder_zip, folder, timeout=600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every assignment built, and its three notebooks graded: {name: {"solution" | "untouched" |
    "wrong": results}}, plus the built student and solution notebooks under "notebooks"."""
    from convviz_helpers import models

    models.shapes_model()  # the shipped weights: loads in a second, trains nothing
    output = tmp_path_factory.mktemp("assignments")
    jobs, built = {}, {}
    for name, master in MASTERS.items():
        student, autograder_zip = build_assignment.build(master, output)
        solution = nbformat.read(student.parent.parent / "autograder" / master.name, as_version=4)
        untouched = nbformat.read(student, as_version=4)
        wrong = nbformat.read(student, as_version=4)
        _answer_cell(wrong).source = ASSIGNMENTS[name][2].strip()
        built[name] = (student, solution)
        for kind, notebook in [("solution", solution), ("untouched", untouched), ("wrong", wrong)]:
            jobs[name, kind] = (notebook, autograder_zip, output / "graded" / name / kind, name)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: one kernel each
        futures = {key: pool.submit(_grade, *job) for key, job in jobs.items()}
        results = {key: future.result() for key, future in futures.items()}
    return {name: {kind: results[name, kind] for kind in ("solution", "untouched", "wrong")} | {"notebooks": built[name]}
            for name in MASTERS}


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_solution_gets_full_marks(graded, name):
    points = ASSIGNMENTS[name][0]
    scores = graded[name]["solution"]
    assert {q: score for q, (score, _, _) in scores.items()} == points
    assert {q: maximum for q, (_, maximum, _) in scores.items()} == points


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_untouched_student_notebook_gets_zero(graded, name):
    scores = graded[name]["untouched"]
    assert {q: score for q, (score, _, _) in scores.items()} == dict.fromkeys(ASSIGNMENTS[name][0], 0)
    for question, (_, _, feedback) in scores.items():
        assert "returns nothing yet" in feedback, (question, feedback)


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_a_plausible_wrong_answer_gets_its_hint(graded, name):
    scores = graded[name]["wrong"]
    assert {q: score for q, (score, _, _) in scores.items()} == dict.fromkeys(ASSIGNMENTS[name][0], 0)
    hint = ASSIGNMENTS[name][3]
    assert all(hint in feedback for _, _, feedback in scores.values()), scores


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_written_questions_reach_the_graders(graded, name, tmp_path):
    """What ``otter export --filtering`` keeps of a submission: each written question's prompt
    and the student's answer, nothing else; the model answer and rubric only in the solutions."""
    from otter.export.exporters.base_exporter import BaseExporter

    student, solution = graded[name]["notebooks"]
    written = ASSIGNMENTS[name][1]
    answered = nbformat.read(student, as_version=4)
    answers = [cell for cell in answered.cells if cell.cell_type == "markdown" and "Type your answer here" in cell.source]
    assert len(answers) == len(written)
    for number, cell in enumerate(answers):
        cell.source = f"My answer number {number}."
    nbformat.write(answered, tmp_path / "submission.ipynb")
    kept = BaseExporter.load_notebook(str(tmp_path / "submission.ipynb"), filtering=True, pagebreaks=False)
    text = "\n".join(cell.source for cell in kept.cells)
    assert text.count("(written, graded by hand)") == len(written)
    assert all(f"My answer number {number}." in text for number in range(len(written)))
    assert "grader.check" not in text and "def " not in text  # code and autograded parts left out
    # The solutions carry a model answer and a rubric for every written question; students never see them.
    solutions = "\n".join(cell.source for cell in solution.cells)
    assert solutions.count("**Model answer.**") == solutions.count("**Rubric (") == len(written)
    for question, points in written.items():
        assert f"**Rubric ({points} point" in solutions
    handed_out = "\n".join(cell.source for cell in nbformat.read(student, as_version=4).cells)
    assert "**Model answer.**" not in handed_out and "BEGIN SOLUTION" not in handed_out
