"""Grading a notebook the way an instructor does: Otter-Grader's ``otter run`` (no Docker)."""

import json
import subprocess
import sys


def otter_run(submission, autograder_zip, folder, timeout):
    """``otter run`` on the notebook file ``submission`` with ``autograder_zip``, results written
    into ``folder``: {test name: (score, max score, feedback)} for every scored test."""
    run = subprocess.run([sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(autograder_zip),
                          "-o", str(folder), str(submission)], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((folder / "results.json").read_text())
    return {test["name"]: (test["score"], test["max_score"], test["output"])
            for test in results["tests"] if "score" in test}
