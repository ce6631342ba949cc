"""The code trigger's inputs: which package modules each script uses."""

from conftest import REPO

from aedepth.imports import package_modules

SCRIPTS = REPO / "workflow" / "scripts"


def names(script):
    return {path.stem for path in package_modules(SCRIPTS / script)}


def test_direct_and_transitive_imports_are_found():
    # evaluate_latents imports config, data, files, jobs, latents, metrics, model and train
    # (kept_epoch) directly; data imports files and jobs again: each module appears once.
    assert names("evaluate_latents.py") == {
        "config",
        "data",
        "files",
        "jobs",
        "latents",
        "metrics",
        "model",
        "train",
    }


def test_modules_a_script_does_not_use_are_absent():
    assert "metrics" not in names("train_model.py")
    assert "train" not in names("plot_metrics.py")
    assert "metrics" in names("plot_metrics.py")  # through aedepth.plots


def test_every_script_uses_the_job_log():
    for script in SCRIPTS.glob("*.py"):
        assert "jobs" in names(script.name), script.name
