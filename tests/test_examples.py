"""The worked examples in examples/: each is documented, valid and plans its study; the
sample-sized one (offline, source: sample) runs end to end, the large ones only as dry runs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, jobs_in, snakemake

pytestmark = pytest.mark.workflow

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
NAMES = [path.stem for path in EXAMPLES]
BASE = yaml.safe_load((REPO / "config.yaml").read_text())


def settings(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def needs_missing_folder(path: Path) -> str | None:
    """Why `path` cannot be planned here, if its source is a local folder that is absent."""
    source = str(settings(path).get("source", ""))
    if source.startswith("/") and not Path(source).is_dir():
        return f"{source} is absent (Debian: apt-get install dataset-fashion-mnist)"
    return None


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh copy of the workflow with the examples beside it, as in a clone."""
    folder = copy_workflow(tmp_path / "study")
    shutil.copytree(REPO / "examples", folder / "examples")
    return folder


def test_the_five_examples_exist_and_the_readme_lists_each():
    assert NAMES == ["deeper-sweep", "families", "fashion-mnist-folder", "latent-sizes", "sample"]
    readme = (REPO / "README.md").read_text()
    for name in NAMES:
        assert f"examples/{name}.yaml" in readme


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_example_is_documented_and_names_its_own_study(path):
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert text.startswith("# Worked example: ")
    assert any(f"snakemake --cores 4 --configfile examples/{path.name}" in h for h in header)
    assert any(line.startswith("# Time: ") for line in header)
    assert set(settings(path)) <= set(BASE), "every key is one of config.yaml's"


def test_examples_name_different_studies():
    studies = [settings(path)["study"] for path in EXAMPLES]
    assert all(studies) and len(set(studies)) == len(studies)


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_example_plans_its_study(path, workdir):
    if reason := needs_missing_folder(path):
        pytest.skip(reason)
    config = BASE | settings(path)  # the example overrides config.yaml's keys
    dry = snakemake(workdir, "-n", "--cores", "4", "--configfile", f"examples/{path.name}")
    jobs = jobs_in(dry.stdout)
    trained = [job for job in jobs if job.startswith("train(")]
    copied = [job for job in jobs if job.startswith("copy_training(")]
    axes = ("depths", "latent_dims", "seeds", "arms", "trainings", "architectures")
    assert len(trained) + len(copied) == math.prod(len(config[axis]) for axis in axes)
    # in both arms the matched deepest models are the article's (deeper-sweep: depths 5, 6)
    deepest = {"deeper-sweep": 2}.get(path.stem, 1) if len(config["arms"]) == 2 else 0
    assert len(copied) == deepest * len(config["seeds"]) * len(config["latent_dims"])
    # the study's outputs under the example's own folder
    assert f"results/{config['study']}/findings.md" in dry.stdout


def test_sample_example_runs_end_to_end(workdir):
    """The example as a user runs it, at one epoch to keep the test short."""
    example = "examples/sample.yaml"
    snakemake(workdir, "--cores", "2", "--configfile", example, "--config", "epochs=1")
    folder = workdir / "results" / settings(REPO / example)["study"]
    findings = (folder / "findings.md").read_text()
    assert "1 → 2 hidden layers" in findings and "2 → 3 hidden layers" in findings
    assert (
        "Seeds trained: 3 (0, 1, 2)" in findings
        and "% for the 2 steps together; 3 paired seeds, 1 epoch)" in findings
    )
    assert (folder / "figures/answer.png").stat().st_size > 0
    again = snakemake(workdir, "-n", "--configfile", example, "--config", "epochs=1")
    assert jobs_in(again.stdout) == set()
