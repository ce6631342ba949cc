"""Rerun only what is stale: for each kind of change, exactly the right jobs run, and no others.

Snakemake reruns a job when an input is newer than its outputs (mtime), or when its params, its
set of input files, its code or its software environment changed since the outputs were made.
These tests build one small study, then make one change at a time and compare the jobs that
Snakemake plans (a dry run, which prints the same job blocks as a real run) with the exact set
of (rule, wildcards) written out here by hand. One change is also executed, to show that a run
does what its plan said and leaves nothing stale. The last test builds the Snakemake report.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, WORKFLOW_FILES, copy_workflow, jobs_in, snakemake

pytestmark = pytest.mark.workflow

# The study every test starts from: depths 1 and 3 of the default hidden_sizes [500, 300, 100],
# so depth 1 trains with widths [500] and depth 3 with [500, 300, 100]; depth 2 is left out
# so that adding it is a change of its own.
BASE_CONFIG = {"source": "sample", "epochs": "1", "depths": "[1,3]", "seeds": "[0]"}


def model_jobs(run: str) -> set[str]:
    """The jobs of one model run: training, latents, metrics."""
    return {f"{rule}(run={run})" for rule in ("train", "embed", "evaluate")}


def group_figures(group: str) -> set[str]:
    """The per-group figures, which show every seed's model of that group."""
    return {f"plot_reconstructions(group={group})", f"plot_latent(group={group})"}


def model_chain(depth: int, latent: int = 2) -> set[str]:
    """Every job of one depth: its model, latents, metrics and per-depth figures."""
    return model_jobs(f"depth{depth}_dim{latent}_seed0") | group_figures(
        f"depth{depth}_dim{latent}"
    )


PCA = "baseline(method=pca, setting=dim2)"
# The primary question's record (results/<study>/question.json) and the jobs that read it.
QUESTION = {"declare_question", "compare_depths", "plot_answer"}
# Any config change rewrites the study's snapshot of its config (results/<study>/study.yaml,
# which `snakemake compare` reads), and nothing else that does not use the changed value.
SNAPSHOT = {"study_snapshot"}
# The sample study's folder (its default name: the dataset, -sample for the sample source).
STUDY = "results/mnist-sample"


# The jobs that read every model: they rerun when any one model changes.
AGGREGATES = {
    "summarize",
    "summary_table",
    "compare_depths",
    "plot_combined",
    "plot_metrics",
    "plot_training",
    "plot_answer",
    "explorer",
}


# Every figure job of the study (depths 1 and 3, latent size 2).
FIGURES = (
    group_figures("depth1_dim2")
    | group_figures("depth3_dim2")
    | {
        "plot_combined",
        "plot_metrics",
        "plot_training",
        "plot_answer",
    }
)


def config_args(**changes: str) -> list[str]:
    return ["--config", *(f"{key}={value}" for key, value in (BASE_CONFIG | changes).items())]


def planned(workdir: Path, **changes: str) -> set[str]:
    """The jobs a dry run with these config changes would run."""
    result = snakemake(workdir, "--dry-run", *config_args(**changes))
    return jobs_in(result.stdout + result.stderr)


def executed(workdir: Path, **changes: str) -> set[str]:
    result = snakemake(workdir, "--cores", "2", *config_args(**changes))
    return jobs_in(result.stdout + result.stderr)


def touch_by_editing(path: Path) -> None:
    """A comment-only edit: the code is the same, only its mtime is newer than the outputs."""
    with path.open("a") as handle:
        handle.write("\n# edited by test_reruns\n")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """One finished study (depths 1 and 3, one epoch) shared by the whole module: read only."""
    workdir = copy_workflow(tmp_path_factory.mktemp("reruns") / "study")
    built = executed(workdir)
    assert built == model_chain(1) | model_chain(3) | AGGREGATES | SNAPSHOT | {
        "prepare_data",
        PCA,
        "declare_question",
    }
    return workdir


def question_record(workdir: Path) -> dict:
    return json.loads((workdir / STUDY / "question.json").read_text())


@pytest.fixture
def study_copy(study: Path, tmp_path: Path) -> Path:
    """The finished study copied elsewhere with its mtimes and .snakemake records, to change."""
    return Path(shutil.copytree(study, tmp_path / "moved", symlinks=True))


# 1. nothing changed -------------------------------------------------------------------------


def test_nothing_changed_nothing_runs(study):
    assert planned(study) == set()


@pytest.mark.parametrize("cores", ["1", "3", "4", "8"])
def test_other_cores_rerun_nothing(study, cores):
    # the study was built with --cores 2: threads are a setting (training_threads), never
    # derived from --cores, so no params change with it
    assert jobs_in(snakemake(study, "-n", "--cores", cores, *config_args()).stdout) == set()


# A Python start-up hook that makes this machine look like a 64-CPU node to every process.
SIXTY_FOUR_CPUS = """
import os
os.sched_getaffinity = lambda pid: set(range(64))
os.cpu_count = lambda: 64
"""


def test_a_new_seed_on_a_64_cpu_node_trains_only_its_models(study, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(SIXTY_FOUR_CPUS)
    run = snakemake(
        study, "-n", "--cores", "64", *config_args(seeds="[0,1]"),
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    new_models = model_jobs("depth1_dim2_seed1") | model_jobs("depth3_dim2_seed1")
    redrawn = group_figures("depth1_dim2") | group_figures("depth3_dim2")
    assert jobs_in(run.stdout) == new_models | redrawn | AGGREGATES | SNAPSHOT


def test_the_slurm_profile_over_a_local_study_reruns_nothing(study):
    run = snakemake(study, "-n", "--workflow-profile", "profiles/slurm", *config_args())
    assert jobs_in(run.stdout + run.stderr) == set(), run.stdout


def test_a_moved_study_is_still_up_to_date(study_copy):
    # The code inputs are recorded relative to the working directory; absolute paths (or
    # workflow.source_path's recorded origin) would make the input trigger rerun every job.
    assert planned(study_copy) == set()


# 2.-5. config changes -------------------------------------------------------------------------


def test_epochs_reruns_all_training_and_downstream_not_the_data(study):
    assert planned(study, epochs="2") == model_chain(1) | model_chain(3) | AGGREGATES | SNAPSHOT
    # not planned: prepare_data (does not depend on training) and the baseline (data only)


@pytest.mark.parametrize(
    "change",
    [{"learning_rate": "0.002"}, {"batch_size": "64"}, {"validation_fraction": "0.1"}],
)
def test_a_training_setting_reruns_every_model_and_nothing_before_or_beside(study, change):
    assert planned(study, **change) == model_chain(1) | model_chain(3) | AGGREGATES | SNAPSHOT


def test_a_new_seed_trains_only_its_models(study):
    # the per-group figures show the median seed of each group, so they are redrawn; the
    # question's record is not redone (its params are the question and the models' folder)
    new_models = model_jobs("depth1_dim2_seed1") | model_jobs("depth3_dim2_seed1")
    redrawn = group_figures("depth1_dim2") | group_figures("depth3_dim2")
    assert planned(study, seeds="[0,1]") == new_models | redrawn | AGGREGATES | SNAPSHOT


def test_a_new_latent_size_runs_its_models_its_baseline_and_the_aggregates(study):
    assert (
        planned(study, latent_dims="[2,3]")
        == model_chain(1, latent=3)
        | model_chain(3, latent=3)
        | {"baseline(method=pca, setting=dim3)"}
        | AGGREGATES
        | SNAPSHOT
    )


def test_a_new_baseline_runs_only_that_baseline_and_the_aggregates_that_read_it(study):
    assert (
        planned(study, baselines="[pca,random_projection]")
        == {
            "baseline(method=random_projection, setting=dim2_seed0)",
            "summarize",
            "summary_table",
            "compare_depths",
            "plot_metrics",
            "plot_answer",
            "explorer",  # shows every baseline run
        }
        | SNAPSHOT
    )


def test_a_new_depth_runs_only_its_chain_and_the_aggregates(study):
    assert planned(study, depths="[1,2,3]") == model_chain(2) | AGGREGATES | SNAPSHOT


def test_last_hidden_size_reruns_only_the_depth_that_uses_it(study):
    result = snakemake(study, "--dry-run", *config_args(hidden_sizes="[500,300,50]"))
    assert jobs_in(result.stdout + result.stderr) == model_chain(3) | AGGREGATES | SNAPSHOT
    # the training job's params hold its own widths, not the whole hidden_sizes list
    assert "'widths': [500, 300, 100]" in result.stdout + result.stderr  # before
    assert "'widths': [500, 300, 50]" in result.stdout + result.stderr  # now


def test_an_unused_hidden_size_reruns_nothing_but_the_snapshot(study):
    # a fourth width is used by no depth of this study
    assert planned(study, hidden_sizes="[500,300,100,64]") == SNAPSHOT


def test_the_conv_familys_channels_rerun_nothing_in_an_mlp_study(study):
    assert planned(study, conv_channels="[8,16,32]") == SNAPSHOT


def test_adding_the_conv_family_trains_only_its_models(study):
    # the MLP's runs keep their ids and training; their records gain the architecture
    # column, so their latents, metrics and figures are redone, not their training
    conv = model_chain(1) | model_chain(3)
    conv = {
        job.replace("seed0)", "seed0_archconv)").replace("_dim2)", "_dim2_archconv)")
        for job in conv
    }
    mlp = {job for job in model_chain(1) | model_chain(3) if not job.startswith("train(")}
    assert planned(study, architectures="[mlp,conv]") == conv | mlp | AGGREGATES | SNAPSHOT


def test_plot_digits_reruns_only_the_reconstruction_figures(study):
    assert (
        planned(study, plot_digits="5")
        == {
            "plot_reconstructions(group=depth1_dim2)",
            "plot_reconstructions(group=depth3_dim2)",
            "plot_combined",
        }
        | SNAPSHOT
    )


def test_explorer_points_reruns_only_the_explorer(study):
    assert planned(study, explorer_points="200") == {"explorer"} | SNAPSHOT


def test_plot_dpi_reruns_only_the_figures(study):
    assert planned(study, plot_dpi="80") == FIGURES | SNAPSHOT


def test_a_metric_setting_reruns_metrics_and_their_users(study):
    # every figure but the training curves: e.g. the seed shown is chosen by kNN accuracy
    assert (
        planned(study, knn_neighbors="7")
        == {
            "evaluate(run=depth1_dim2_seed0)",
            "evaluate(run=depth3_dim2_seed0)",
            PCA,
            "summarize",
            "summary_table",
            "compare_depths",
            "explorer",  # the PCA job writes its latents anew with its metrics
        }
        | (FIGURES - {"plot_training"})
        | SNAPSHOT
    )


@pytest.mark.parametrize(
    "change", [{"smallest_difference": "0.02"}, {"primary_metric": "silhouette"}]
)
def test_the_primary_question_reruns_only_its_record_the_comparison_and_its_readers(study, change):
    # declared before the study runs, but changing it later retrains nothing
    assert planned(study, **change) == QUESTION | SNAPSHOT


def test_the_question_and_a_training_setting_changed_together_retrain_every_model(study):
    # training has no link to the question's record once it exists: with one (even ancient),
    # Snakemake 9.27 reruns the record and skips the models whose epochs changed, reporting
    # success (snakemake/snakemake#4166)
    changed = planned(study, epochs="2", smallest_difference="0.02")
    assert changed == model_chain(1) | model_chain(3) | AGGREGATES | SNAPSHOT | QUESTION


def test_a_fresh_study_records_its_question_before_any_model(study):
    record = question_record(study)
    assert {key: record[key] for key in ("primary_metric", "smallest_difference")} == {
        "primary_metric": "knn_accuracy",
        "smallest_difference": 0.01,
    }
    assert record["models_trained_before"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["recorded_at"])


def test_a_fresh_study_records_its_question_first_even_when_training_is_prioritized(tmp_path):
    # -P asks the scheduler to make the models first: without its ordering, the record would
    # wait for them on one core and name them as trained before the question
    workdir = copy_workflow(tmp_path / "study")
    weights = f"{STUDY}/models/depth1_dim2_seed0/model.pt"
    run = snakemake(
        workdir, "--cores", "1", *config_args(depths="[1]"), "-P", weights,
        "--", weights, f"{STUDY}/question.json",
    )  # fmt: skip
    assert jobs_in(run.stdout + run.stderr) == {
        "prepare_data",
        "declare_question",
        "train(run=depth1_dim2_seed0)",
    }
    assert question_record(workdir)["models_trained_before"] == []


def test_a_question_changed_after_training_records_the_trained_models(study_copy):
    first = question_record(study_copy)
    assert executed(study_copy, smallest_difference="0.02") == QUESTION | SNAPSHOT
    record = question_record(study_copy)
    assert record["smallest_difference"] == 0.02
    assert record["models_trained_before"] == ["depth1_dim2_seed0", "depth3_dim2_seed0"]
    assert record["recorded_at"] >= first["recorded_at"]
    # the comparison reads the record: the findings date the question by it
    assert record["recorded_at"][:10] in (study_copy / STUDY / "findings.md").read_text()
    assert planned(study_copy, smallest_difference="0.02") == set()


def test_the_records_code_rerun_keeps_the_record_of_an_unchanged_question(study_copy):
    # a new recording would say the question was set after training: it was not
    before = (study_copy / STUDY / "question.json").read_bytes()
    touch_by_editing(study_copy / "workflow/scripts/declare_question.py")
    assert planned(study_copy) == QUESTION
    # the plan lists the comparison, which reads the record; once the record has run (a
    # checkpoint) Snakemake looks again, finds its content the same and may skip it
    ran = executed(study_copy)
    assert "declare_question" in ran and ran <= QUESTION
    assert (study_copy / STUDY / "question.json").read_bytes() == before
    assert planned(study_copy) == set()


def test_a_study_without_a_record_records_its_models_and_retrains_none(study_copy):
    # a study made before question.json (or the file deleted): the record names the models
    # that exist; the dry run lists training too (it waits on the record, a checkpoint), the
    # run then finds the models up to date, and redoes their latents, metrics and figures once
    (study_copy / STUDY / "question.json").unlink()
    assert "train(run=depth1_dim2_seed0)" in planned(study_copy)
    ran = executed(study_copy)
    assert "declare_question" in ran and not {job for job in ran if job.startswith("train(")}
    assert question_record(study_copy)["models_trained_before"] == [
        "depth1_dim2_seed0",
        "depth3_dim2_seed0",
    ]
    assert planned(study_copy) == set()


# 6. code changes ------------------------------------------------------------------------------


def test_metrics_code_reruns_only_metrics_jobs_and_what_depends_on_them(study_copy):
    touch_by_editing(study_copy / "workflow/scripts/aedepth/metrics.py")
    assert (
        planned(study_copy)
        == {
            # evaluate_latents.py and fit_baseline.py import aedepth.metrics
            "evaluate(run=depth1_dim2_seed0)",
            "evaluate(run=depth3_dim2_seed0)",
            PCA,
            # summarize.py imports aedepth.summary, which imports aedepth.metrics
            "summarize",
            "summary_table",  # reads summary.csv
            "compare_depths",  # aedepth.stats imports aedepth.metrics
            # every plotting script imports aedepth.plots, which imports aedepth.metrics (METRICS);
            # plot_latent and plot_reconstructions also import aedepth.summary
            "explorer",  # make_explorer.py draws codes as the figures do (aedepth.plots)
        }
        | FIGURES
    )
    # not planned: prepare_data, train and embed, whose scripts never import aedepth.metrics


def test_plotting_code_reruns_only_the_figures(study_copy):
    touch_by_editing(study_copy / "workflow/scripts/aedepth/plots.py")
    # and the explorer, which projects wide codes with aedepth.plots.project_2d
    assert planned(study_copy) == FIGURES | {"explorer"}


def test_a_script_reruns_only_its_own_jobs(study_copy):
    touch_by_editing(study_copy / "workflow/scripts/plot_latent.py")
    assert planned(study_copy) == {
        "plot_latent(group=depth1_dim2)",
        "plot_latent(group=depth3_dim2)",
    }


# The last commit before the image sources and model families: a study it made is what users
# of that version have. Updating their checkout rewrites the files whose content changed.
PREVIOUS_VERSION = "f98c2d1"


def check_out(workdir: Path, files: dict[str, bytes]) -> None:
    """Make the workflow files under `workdir` these (path -> content) as `git checkout` does:
    a file of the same content keeps its time; a changed or new file is written now."""
    for name in WORKFLOW_FILES:
        for old in sorted((workdir / name).rglob("*")) if (workdir / name).is_dir() else []:
            if old.is_file() and str(old.relative_to(workdir)) not in files:
                old.unlink()
    for name, content in files.items():
        path = workdir / name
        if not path.is_file() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def workflow_files(commit: str | None) -> dict[str, bytes]:
    """The workflow files of `commit` (None: this checkout), path -> content."""
    if commit is None:
        found = {}
        for name in WORKFLOW_FILES:
            source = REPO / name
            paths = sorted(source.rglob("*")) if source.is_dir() else [source]
            for path in paths:
                if path.is_file() and "__pycache__" not in path.parts:
                    found[str(path.relative_to(REPO))] = path.read_bytes()
        return found
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", commit, *WORKFLOW_FILES],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        name: subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:{name}"], capture_output=True, check=True
        ).stdout
        for name in listing
    }


def outputs(workdir: Path) -> dict[str, bytes]:
    """The study's files, path -> content, without logs and timings (which differ each run)."""
    study = workdir / STUDY
    return {
        str(path.relative_to(study)): path.read_bytes()
        for path in sorted(study.rglob("*"))
        if path.is_file() and not {"logs", "benchmarks"} & set(path.relative_to(study).parts)
    }


def test_updating_from_the_previous_version_keeps_run_ids_files_and_numbers(tmp_path):
    """A study made by the previous version, its checkout updated to this one: it reruns once
    (the training code changed, and the data's readers gained its fingerprint as an input),
    with the same parameters and run ids, and every weight, latent and number comes out as it
    was; then nothing is left to do."""
    known = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS_VERSION}^{{commit}}"],
        capture_output=True,
    )
    if known.returncode != 0:
        pytest.skip(f"needs the git history back to {PREVIOUS_VERSION} (a full clone)")
    workdir = tmp_path / "study"
    check_out(workdir, workflow_files(PREVIOUS_VERSION))
    executed(workdir)
    before = outputs(workdir)
    check_out(workdir, workflow_files(None))
    plan = snakemake(workdir, "--dry-run", *config_args())
    plan = plan.stdout + plan.stderr
    assert {job for job in jobs_in(plan) if job.startswith("train(")} == {
        "train(run=depth1_dim2_seed0)",
        "train(run=depth3_dim2_seed0)",
    }
    assert "Params have changed" not in plan  # no setting of any job changed
    executed(workdir)
    after = outputs(workdir)
    assert before.keys() <= after.keys()
    changed = {name for name in before if before[name] != after[name]}
    # the same bytes but for the config snapshot (it lists the new keys), the epochs' times,
    # the latent explorer, whose page this version draws anew (thumbnails of any size), the
    # latent figures, drawn at a fixed size since #34 (a colour bar past 20 classes), and the
    # depth comparisons, whose intervals are simultaneous and verdicts read off them since #32
    # (new columns and wording; the answer figure marks them)
    histories = {name for name in before if name.endswith("history.csv")}
    latent = {name for name in before if name.endswith("_latent.png")}
    comparisons = {"depth_comparisons.csv", "primary_comparisons.csv", "findings.md",
                   "headline.rst", "figures/answer.png"}  # fmt: skip
    assert changed - histories <= {"study.yaml", "explorer.html"} | latent | comparisons
    for name in histories:
        assert untimed(before[name]) == untimed(after[name])
    assert planned(workdir) == set()  # one run did all there was to do


def untimed(history: bytes) -> list[list[str]]:
    """A history.csv's cells without its `seconds` column."""
    rows = [line.split(",") for line in history.decode().splitlines()]
    column = rows[0].index("seconds")
    return [row[:column] + row[column + 1 :] for row in rows]


# 7. a deleted output, planned and executed ---------------------------------------------------


def test_code_of_the_data_and_its_readers_reruns_both_in_one_run(study_copy):
    # data.py prepares the data and is read by training: the rebuilt data must not hide the
    # readers' own change (with only ancient links, Snakemake 9.27 would run prepare_data
    # alone, report success, and leave the models for the next run)
    touch_by_editing(study_copy / "workflow/scripts/aedepth/data.py")
    everything = model_chain(1) | model_chain(3) | AGGREGATES | {"prepare_data", PCA}
    assert planned(study_copy) == everything
    assert executed(study_copy) == everything
    assert planned(study_copy) == set()


def test_shared_data_rebuilt_with_the_same_content_reruns_no_other_study(study_copy):
    # study b reads the data study a built (one folder per data settings, see data_folder)
    built_b = executed(study_copy, study="b")
    assert "prepare_data" not in built_b and "train(run=depth1_dim2_seed0)" in built_b
    data = study_copy / "results/data/sample-test0.2/dataset.npz"
    with np.load(data) as before:
        arrays = {key: before[key] for key in before.files}
    snakemake(study_copy, "--delete-all-output", "--cores", "1", *config_args())
    assert not data.exists()
    assert "prepare_data" in executed(study_copy)  # study a again: the data rebuilt, newer
    with np.load(data) as after:
        assert all(np.array_equal(after[key], value) for key, value in arrays.items())
    assert planned(study_copy, study="b") == set()
    # other data settings are another folder: b reruns from the data on
    changed = planned(study_copy, study="b", sample_test_fraction="0.3")
    assert {"prepare_data", "train(run=depth1_dim2_seed0)", "train(run=depth3_dim2_seed0)"} <= (
        changed
    )


def test_a_deleted_latent_file_reruns_only_it_and_its_dependents(study_copy):
    latents = study_copy / STUDY / "latents/depth1_dim2_seed0.parquet"
    latents.unlink()
    expected = {
        "embed(run=depth1_dim2_seed0)",
        "evaluate(run=depth1_dim2_seed0)",
        "plot_reconstructions(group=depth1_dim2)",  # reads depth 1's metrics
        "plot_latent(group=depth1_dim2)",
        "summarize",
        "summary_table",
        "compare_depths",
        "plot_combined",
        "plot_metrics",
        "plot_answer",
        "explorer",
    }
    # not planned: depth 3, train (the model is still there), plot_training (reads histories)
    assert planned(study_copy) == expected
    assert executed(study_copy) == expected
    assert latents.stat().st_size > 0
    assert planned(study_copy) == set()


# The Snakemake report ------------------------------------------------------------------------

# One sentence of each caption in workflow/report/, as it appears (HTML-escaped) in the report.
CAPTION_SENTENCES = {
    "depth1_dim2_latent.png": "<strong>Latent space, depth 1, latent size 2.</strong>",
    "depth3_dim2_latent.png": "<strong>Latent space, depth 3, latent size 2.</strong>",
    "depth1_dim2_reconstructions.png": "<strong>Reconstructions, depth 1, latent size 2.</strong>",
    "depth3_dim2_reconstructions.png": "<strong>Reconstructions, depth 3, latent size 2.</strong>",
    "findings.md": "<strong>Findings: does depth improve the latent representation?</strong>",
    "reconstructions.png": "<strong>Reconstructions of every depth, side by side.</strong>",
    "training_curves.png": "<strong>Training curves.</strong>",
    "metrics_vs_depth.png": "<strong>Latent-space metrics against depth.</strong>",
    "answer.png": "<strong>The answer at a glance: does depth help?</strong>",
    "gap_vs_depth.png": "<strong>Overfitting against depth.</strong>",
    "summary.html": "<strong>Summary table.</strong>",
    "summary.csv": "<strong>Summary table.</strong>",
    "explorer.html": "<strong>Latent explorer.</strong>",
}


def test_report_shows_every_figure_with_its_caption_and_the_summary_table(study_copy):
    # the command of the README, on a finished study
    snakemake(study_copy, "--report", f"{STUDY}/report.html", *config_args())
    html = (study_copy / STUDY / "report.html").read_text()
    assert len(html) > 500_000  # figures are embedded as base64 data URIs: self-contained
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html).group(1))
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html).group(1))
    shown = {
        category: {subcategory: sorted(paths) for subcategory, paths in subcategories.items()}
        for category, subcategories in categories.items()
    }
    assert shown == {
        "1. Answer": {
            "Other": [f"{STUDY}/figures/answer.png", f"{STUDY}/figures/gap_vs_depth.png"]
        },
        "Per depth": {
            "Depth 1, latent size 2": [
                f"{STUDY}/figures/depth1_dim2_latent.png",
                f"{STUDY}/figures/depth1_dim2_reconstructions.png",
            ],
            "Depth 3, latent size 2": [
                f"{STUDY}/figures/depth3_dim2_latent.png",
                f"{STUDY}/figures/depth3_dim2_reconstructions.png",
            ],
        },
        "Combined": {
            "Other": [
                f"{STUDY}/figures/reconstructions.png",
                f"{STUDY}/figures/training_curves.png",
            ]
        },
        "Metrics": {
            "Other": [
                f"{STUDY}/figures/metrics_vs_depth.png",
                f"{STUDY}/findings.md",
                f"{STUDY}/summary.csv",
                f"{STUDY}/summary.html",
            ]
        },
        "Latent explorer": {"Other": [f"{STUDY}/explorer.html"]},
    }
    by_name = {entry["name"]: entry for entry in results.values()}
    assert set(by_name) == set(CAPTION_SENTENCES)
    for name, sentence in CAPTION_SENTENCES.items():
        assert sentence in by_name[name]["caption"], name
        assert "{{" not in by_name[name]["caption"], name  # every Jinja field was filled in
        assert "TODO" not in by_name[name]["caption"], name
        assert by_name[name]["data_uri"].startswith("data:"), name
    # the summary table is embedded as an HTML page (the report shows those inline)
    table = base64.b64decode(by_name["summary.html"]["data_uri"].split("base64,", 1)[1]).decode()
    assert "<table" in table and "depth1_dim2_seed0" in table and "depth3_dim2_seed0" in table
    # the global description comes from workflow/report/workflow.rst
    assert "How does the number of hidden layers change" in html
