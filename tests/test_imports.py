"""The code trigger's inputs: which package modules each script uses."""

from conftest import REPO

from aedepth.imports import package_modules

SCRIPTS = REPO / "workflow" / "scripts"


def names(script):
    return {path.stem for path in package_modules(SCRIPTS / script)}


def test_direct_and_transitive_imports_are_found():
    # evaluate_latents imports data, files, jobs, latents, metrics, model and summary directly;
    # summary imports grid, grid imports families, data imports files and jobs again: each module appears once.
    assert names("evaluate_latents.py") == {
        "data",
        "families",
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


def test_the_modules_snakemake_imports_at_parse_time_leave_heavy_libraries_out():
    # common.smk's `from aedepth.X import ...` run on every Snakemake start and every cluster
    # job: pandas, scikit-learn, torch or matplotlib there cost 1-2 s each, each time
    import re
    import subprocess
    import sys

    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    modules = re.findall(r"^from (aedepth\.\w+) import", common, flags=re.MULTILINE)
    assert {"aedepth.studies", "aedepth.baselines", "aedepth.grid"} <= set(modules)
    heavy = ("pandas", "sklearn", "torch", "matplotlib", "scipy")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; "
            + "; ".join(f"import {module}" for module in modules)
            + f"; print(' '.join(m for m in {heavy!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert loaded == []
