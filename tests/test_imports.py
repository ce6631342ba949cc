"""The code trigger's inputs: which package modules each script uses."""

from conftest import REPO

from aedepth.imports import package_modules

SCRIPTS = REPO / "workflow" / "scripts"


def names(script):
    return {path.stem for path in package_modules(SCRIPTS / script)}


def test_direct_and_transitive_imports_are_found():
    # evaluate_latents imports data, files, jobs, latents, metrics, model and summary directly;
    # summary imports grid, data imports files and jobs again: each module appears once.
    assert names("evaluate_latents.py") == {
        "data",
        "files",
        "grid",
        "jobs",
        "latents",
        "metrics",
        "model",
        "summary",
    }


def test_evaluation_does_not_depend_on_the_training_code():
    # an edit of the training loop or its speed path must not rerun every evaluation
    for script in ("evaluate_latents.py", "embed_latents.py", "fit_baseline.py"):
        assert not {"train", "speed"} & names(script), script
    # train.py says `from aedepth import speed`: that form counts too
    assert {"train", "speed"} <= names("train_model.py")


def test_modules_a_script_does_not_use_are_absent():
    assert "metrics" not in names("train_model.py")
    assert "train" not in names("plot_metrics.py")
    assert "metrics" in names("plot_metrics.py")  # through aedepth.plots


def test_every_script_uses_the_job_log():
    for script in SCRIPTS.glob("*.py"):
        assert "jobs" in names(script.name), script.name
