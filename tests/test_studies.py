"""Studies side by side: names, the shared data folder, snapshots and the compare table.

The unit tests fabricate snapshots and interval files; the workflow test runs two sample
studies in one folder and compares them.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import yaml

from aedepth.config import data_folder
from aedepth.grid import study_name, study_root
from aedepth.jobs import ConfigError, UserFacingError
from aedepth.studies import (
    NO_STUDY,
    QUESTION_KEYS,
    compare_studies,
    differing_keys,
    find_studies,
    flatten,
    headline_columns,
    record_question,
    studies_html,
    write_snapshot,
)
from conftest import REPO, copy_workflow, jobs_in, snakemake
from layouts import studies_headline_layout

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def config_with(**changes):
    return copy.deepcopy(CONFIG) | changes


# Names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, name",
    [
        ({}, "mnist"),
        ({"source": "sample"}, "mnist-sample"),
        (
            {"dataset": "fashion-mnist", "source": "/usr/share/datasets/fashion-mnist"},
            "fashion-mnist",
        ),
        ({"study": ""}, "mnist"),
        ({"study": "wide-lr0.003", "source": "sample"}, "wide-lr0.003"),
        ({"study": "2024"}, "2024"),  # as text; a number is refused (test_bad_input_v3)
    ],
)
def test_a_study_is_named_by_study_or_else_by_its_data(changes, name):
    assert study_name(config_with(**changes)) == name
    assert study_root(config_with(**changes)) == f"results/{name}"


@pytest.mark.parametrize(
    "study, message",
    [
        (
            "a/b",
            "config key 'study' = 'a/b' is not a folder name: set 'study' to letters, digits, "
            "'.', '_', '+' or '-', starting with a letter or digit",
        ),
        (
            "..",
            "config key 'study' = '..' is not a folder name: set 'study' to letters, digits, "
            "'.', '_', '+' or '-', starting with a letter or digit",
        ),
        (
            "Data",
            "config key 'study' = 'Data' is the name of results/data, which every study shares: "
            "set 'study' to another name (not data, logs, studies.csv, studies.html)",
        ),
        (
            "studies.csv",
            "config key 'study' = 'studies.csv' is the name of results/studies.csv, which every "
            "study shares: set 'study' to another name (not data, logs, studies.csv, studies.html)",
        ),
    ],
)
def test_a_study_name_that_is_no_folder_of_its_own_is_refused_in_one_line(study, message):
    with pytest.raises(ConfigError) as error:
        study_name(config_with(study=study))
    assert str(error.value) == message


def test_a_derived_name_that_collides_names_the_key_to_set():
    datasets = CONFIG["datasets"] | {"logs": CONFIG["datasets"]["mnist"]}
    with pytest.raises(
        ConfigError, match=r"^the name derived from 'dataset' \('logs'\) .* set 'study'"
    ):
        study_name(config_with(dataset="logs", datasets=datasets))


# The shared data folder ----------------------------------------------------------------------


def test_the_data_folder_is_keyed_by_what_makes_the_data():
    assert data_folder(config_with(source="sample")) == "results/data/sample-test0.2"
    # the sample is MNIST digits whatever the dataset, so every sample study shares it
    assert data_folder(config_with(source="sample", dataset="fashion-mnist")) == (
        "results/data/sample-test0.2"
    )
    assert data_folder(config_with(source="sample", sample_test_fraction=0.3)) == (
        "results/data/sample-test0.3"
    )
    assert data_folder(CONFIG) == "results/data/mnist"
    assert data_folder(config_with(dataset="fashion-mnist")) == "results/data/fashion-mnist"
    # mirrors do not change the verified bytes, so they share the download
    assert data_folder(config_with(mirrors=["http://localhost:8000/"])) == "results/data/mnist"
    own = CONFIG["datasets"]["mnist"]["checksums"]
    assert data_folder(config_with(checksums=own)) == "results/data/mnist"
    other = dict(own, **{"t10k-labels-idx1-ubyte": "0" * 32})
    assert data_folder(config_with(checksums=other)).startswith("results/data/mnist-md5-")
    folder = data_folder(config_with(source="/usr/share/datasets/fashion-mnist"))
    digest = hashlib.sha256(b'"/usr/share/datasets/fashion-mnist"').hexdigest()[:8]
    assert folder == f"results/data/mnist-folder-{digest}"


# Snapshots and the table ---------------------------------------------------------------------


def intervals_of(study_offset: float, depths=(1, 2), latent_dim=2) -> pd.DataFrame:
    """A depth_intervals.csv as compare_depths writes it, pca rows (no depth) included."""
    rows = []
    for depth in depths:
        for index, metric in enumerate(
            ["knn_accuracy", "silhouette", "trustworthiness", "reconstruction_bce", "loss_gap"]
        ):
            mean = study_offset + depth / 10 + index / 100
            rows.append(
                {
                    "method": "autoencoder",
                    "latent_dim": latent_dim,
                    "arm": "article",
                    "training": "fixed",
                    "depth": depth,
                    "metric": metric,
                    "higher_is_better": True,
                    "n_seeds": 3,
                    "mean": mean,
                    "ci_low": mean - 0.01,
                    "ci_high": mean + 0.01,
                }
            )
    rows.append(rows[0] | {"method": "pca", "arm": None, "training": None, "depth": None})
    return pd.DataFrame(rows)


def make_study(results, name, changes=None, **intervals):
    folder = results / name
    write_snapshot(config_with(**(changes or {})), name, folder / "study.yaml")
    intervals_of(**intervals).to_csv(folder / "depth_intervals.csv", index=False)
    return folder


def test_a_snapshot_is_the_config_with_the_resolved_name_first(tmp_path):
    write_snapshot(config_with(study=None, epochs=7), "mnist", tmp_path / "study.yaml")
    snapshot = yaml.safe_load((tmp_path / "study.yaml").read_text())
    assert list(snapshot)[0] == "study"
    assert snapshot == config_with(study="mnist", epochs=7)


# question.json: the primary question, when it was recorded and which models existed by then.
NOON = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=timezone.utc)


def trained(models, *runs, checkpoint_only=()):
    """Model folders as training leaves them: weights once ended, a checkpoint while running."""
    for run in runs:
        (models / run).mkdir(parents=True)
        (models / run / "model.pt").write_bytes(b"weights")
    for run in checkpoint_only:
        (models / run).mkdir(parents=True)
        (models / run / "checkpoint.pt").write_bytes(b"half-way")


def test_a_question_set_before_any_model_records_none(tmp_path):
    path = tmp_path / "study" / "question.json"
    record = record_question(path, "knn_accuracy", 0.01, tmp_path / "study/models", now=NOON)
    assert (
        json.loads(path.read_text())
        == record
        == {
            "primary_metric": "knn_accuracy",
            "smallest_difference": 0.01,
            "recorded_at": "2026-12-07T12:00:00+00:00",  # UTC, to the second
            "models_trained_before": [],
        }
    )
    assert tuple(record) == QUESTION_KEYS


def test_a_question_set_after_training_names_the_models_that_existed(tmp_path):
    models = tmp_path / "models"
    trained(models, "depth3_dim2_seed0", "depth1_dim2_seed0", checkpoint_only=["depth2_dim2_seed0"])
    local = NOON.astimezone(timezone(timedelta(hours=-5)))  # recorded in UTC, whatever the zone
    record = record_question(tmp_path / "question.json", "silhouette", 0.02, models, now=local)
    assert record["recorded_at"] == "2026-12-07T12:00:00+00:00"
    # sorted; a run still training (its checkpoint, no weights yet) is not trained
    assert record["models_trained_before"] == ["depth1_dim2_seed0", "depth3_dim2_seed0"]


def test_the_same_question_keeps_its_record_and_another_is_recorded_anew(tmp_path):
    path, models = tmp_path / "question.json", tmp_path / "models"
    first = record_question(path, "knn_accuracy", 0.01, models, now=NOON)
    trained(models, "depth1_dim2_seed0")
    later = NOON + timedelta(days=1)
    # its job reran (its code changed, say): the question was still set before training
    assert record_question(path, "knn_accuracy", 0.01, models, now=later) == first
    assert json.loads(path.read_text()) == first
    changed = record_question(path, "knn_accuracy", 0.02, models, now=later)
    assert changed["recorded_at"] == "2026-12-08T12:00:00+00:00"
    assert changed["models_trained_before"] == ["depth1_dim2_seed0"]
    # a damaged record is no record: recorded anew, with the models that exist
    path.write_text('{"primary_metric": "knn_accuracy", "smallest_difference": 0.02')
    assert record_question(path, "knn_accuracy", 0.02, models, now=later) == changed
    path.write_text('{"primary_metric": "knn_accuracy", "smallest_difference": 0.02}')
    assert record_question(path, "knn_accuracy", 0.02, models, now=later) == changed


def test_flatten_dots_nested_keys_and_keeps_lists():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": [], "f": {}}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": [],
        "f": {},
    }


def test_only_the_values_that_differ_are_listed_study_aside():
    first = config_with(study="a")
    second = config_with(study="b", epochs=2, seeds=[0, 1])
    second["training_regimes"] = copy.deepcopy(CONFIG["training_regimes"])
    second["training_regimes"]["converged"]["epochs"] = 100
    assert differing_keys([first, second]) == [
        "seeds",
        "training_regimes.converged.epochs",
        "epochs",
    ]
    assert differing_keys([first, config_with(study="c")]) == []
    # a key only one snapshot has (an older study, say) differs
    assert differing_keys([first, {k: v for k, v in first.items() if k != "plot_dpi"}]) == [
        "plot_dpi"
    ]


def test_headline_columns_name_the_group_as_the_figures_do():
    # depth is read as 1.0 where pca leaves it empty; the columns still say depth1
    columns = headline_columns(
        CONFIG, pd.read_csv(io.StringIO(intervals_of(0.5).to_csv(index=False)))
    )
    assert list(columns) == studies_headline_layout(["depth1_dim2", "depth2_dim2"])
    assert columns["depth2_dim2_silhouette"] == pytest.approx(0.71)
    assert columns["depth2_dim2_silhouette_ci_low"] == pytest.approx(0.70)


def test_compare_lists_each_study_its_differing_values_and_headline_numbers(tmp_path):
    results = tmp_path / "results"
    make_study(results, "b", {"epochs": 2}, study_offset=0.2)
    make_study(results, "a", {"epochs": 1}, study_offset=0.1)
    (results / "data").mkdir()  # shared folders are no studies
    (results / "half").mkdir()  # nor is a study without intervals (not finished)
    write_snapshot(CONFIG, "half", results / "half" / "study.yaml")
    found = find_studies(results)
    assert [folder.name for folder in found] == ["a", "b"]
    table = compare_studies(
        [folder / "study.yaml" for folder in found],
        [folder / "depth_intervals.csv" for folder in found],
    )
    layout = studies_headline_layout(["depth1_dim2", "depth2_dim2"])
    assert list(table.columns) == ["study", "epochs", *layout]
    assert table["study"].tolist() == ["a", "b"]
    assert table["epochs"].tolist() == [1, 2]
    assert table["depth1_dim2_knn_accuracy"].tolist() == pytest.approx([0.2, 0.3])
    page = studies_html(table)
    assert page.count("<tr>") == 2 + 2  # two header rows, one row per study
    assert "0.2 [0.19, 0.21]" in page and "depth2_dim2" in page and "trustworthiness" in page


def test_a_group_only_one_study_has_is_empty_for_the_other(tmp_path):
    results = tmp_path / "results"
    make_study(results, "a", study_offset=0.1)
    make_study(results, "b", {"latent_dims": [3]}, study_offset=0.2, depths=(1,), latent_dim=3)
    found = find_studies(results)
    table = compare_studies(
        [folder / "study.yaml" for folder in found],
        [folder / "depth_intervals.csv" for folder in found],
    )
    assert list(table.columns[:2]) == ["study", "latent_dims"]
    assert table["latent_dims"].tolist() == ["[2]", "[3]"]
    assert table.columns[-3:].tolist() == [
        "depth1_dim3_reconstruction_bce",
        "depth1_dim3_reconstruction_bce_ci_low",
        "depth1_dim3_reconstruction_bce_ci_high",
    ]
    assert pd.isna(table.loc[0, "depth1_dim3_knn_accuracy"])
    assert pd.isna(table.loc[1, "depth1_dim2_knn_accuracy"])
    studies_html(table)  # empty cells render


def test_a_damaged_snapshot_is_refused_in_one_line(tmp_path):
    folder = make_study(tmp_path, "a", study_offset=0.1)
    (folder / "study.yaml").write_text("just text\n")
    with pytest.raises(UserFacingError, match="is not a study snapshot"):
        compare_studies([folder / "study.yaml"], [folder / "depth_intervals.csv"])


# Two studies side by side, end to end ---------------------------------------------------------

SMALL_STUDY = ("source=sample", "depths=[1,2]", "seeds=[0,1]")


def fingerprint(folder):
    """(path, content hash, mtime) of every file under `folder`."""
    return sorted(
        (
            str(path.relative_to(folder)),
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in folder.rglob("*")
        if path.is_file()
    )


@pytest.mark.workflow
def test_two_studies_sit_side_by_side_and_compare_lists_what_differs(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    results = workdir / "results"
    study_a = ["--config", *SMALL_STUDY, "epochs=1", "study=a"]
    study_b = ["--config", *SMALL_STUDY, "epochs=2", "study=b"]
    snakemake(workdir, "--cores", "2", *study_a)
    before = {name: fingerprint(results / name) for name in ("a", "data")}

    run_b = snakemake(workdir, "--cores", "2", *study_b)
    jobs_b = jobs_in(run_b.stdout + run_b.stderr)
    assert "prepare_data" not in jobs_b  # the sample's prepared data is shared, not remade
    assert {"train(run=depth2_dim2_seed1)", "study_snapshot"} <= jobs_b
    # compare, as a user types it (no config): tabulates what exists, builds nothing else
    assert jobs_in(snakemake(workdir, "--dry-run", "compare").stdout) == {"compare"}
    snakemake(workdir, "--cores", "1", "compare")
    # the first study's tree and the shared data are untouched, byte for byte and by mtime
    assert {name: fingerprint(results / name) for name in ("a", "data")} == before
    assert sorted(path.name for path in results.iterdir()) == [
        "a",
        "b",
        "data",
        "logs",
        "studies.csv",
        "studies.html",
    ]
    for name in ("a", "b"):
        tree = {path for path, _, _ in fingerprint(results / name)}
        assert {"study.yaml", "depth_intervals.csv", "findings.md", "figures/answer.png"} <= tree
        assert "models/depth2_dim2_seed1/model.pt" in tree
    assert yaml.safe_load((results / "b/study.yaml").read_text())["epochs"] == 2

    table = pd.read_csv(results / "studies.csv")
    assert table["study"].tolist() == ["a", "b"]
    # exactly the key changed between them (the name is the row's, not a difference)
    layout = studies_headline_layout(["depth1_dim2", "depth2_dim2"])
    assert list(table.columns) == ["study", "epochs", *layout]
    assert table["epochs"].tolist() == [1, 2]
    for name, row in zip(("a", "b"), table.itertuples(index=False)):
        intervals = pd.read_csv(results / name / "depth_intervals.csv").query(
            "method == 'autoencoder' and depth == 2 and metric == 'silhouette'"
        )
        assert row.depth2_dim2_silhouette == pytest.approx(intervals["mean"].item())
        assert row.depth2_dim2_silhouette_ci_high == pytest.approx(intervals["ci_high"].item())
    assert (results / "studies.html").read_text().count("<tr>") == 2 + 2

    # each study stays up to date in its own right: nothing to run for either
    for args in (study_a, study_b, ["compare"]):
        dry_run = snakemake(workdir, "--dry-run", *args)
        assert jobs_in(dry_run.stdout + dry_run.stderr) == set()
    # a study gone (or added, or changed) makes the table stale: compare alone reruns
    shutil.rmtree(results / "b")
    assert jobs_in(snakemake(workdir, "--dry-run", "compare").stdout) == {"compare"}


@pytest.mark.workflow
def test_compare_without_a_finished_study_says_so_in_one_line(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    (workdir / "results/unfinished").mkdir(parents=True)  # a study without its intervals
    (workdir / "results/unfinished/study.yaml").write_text("study: unfinished\n")
    run = snakemake(workdir, "--cores", "1", "compare", check=False)
    # refused before its job: the one line is the last, and no job ran
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == f"aedepth: {NO_STUDY}"
    assert "run one first (snakemake --cores 4 --config source=sample" in NO_STUDY
    assert "Error in rule" not in run.stderr
    assert sorted(path.name for path in (workdir / "results").iterdir()) == ["unfinished"]
    # without hooks (--no-hooks) the job itself says so, in one line of its own
    run = snakemake(workdir, "--cores", "1", "--no-hooks", "compare", check=False)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.startswith("aedepth")]
    assert lines == [f"aedepth error: {NO_STUDY}"], run.stderr
    assert not (workdir / "results/studies.csv").exists()
