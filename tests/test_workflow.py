"""The whole study end to end, through the real `snakemake` command line.

One module-scoped run on the offline sample checks every output for soundness (schemas, row
counts, finite metrics, image sizes), not only existence; further tests run the download path
against an HTTP server on 127.0.0.1 that serves IDX files written by the test.
"""

from __future__ import annotations

import hashlib
import json
import math

import duckdb
import matplotlib.image
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from layouts import (
    COMPARISON_LAYOUT,
    HISTORY_LAYOUT,
    INTERVAL_LAYOUT,
    LOSS_COLUMNS,
    PER_IMAGE_LAYOUT,
    PRIMARY_LAYOUT,
    SUMMARY_LAYOUT,
)
from conftest import copy_workflow, jobs_in, snakemake
from idx_server import closed_port_url, serve_folder, write_fake_mnist
from sentences import check_primary_sentence, check_secondary_part

from aedepth.metrics import METRICS
from aedepth.stats import PRIMARY_VERDICTS, VERDICTS

pytestmark = pytest.mark.workflow

EPOCHS = 2
DEPTHS = [1, 2, 3]
WIDTHS = [500, 300, 100]
SEEDS = [0, 1]
KEYS = [(d, s) for d in DEPTHS for s in SEEDS]
MODELS = [f"depth{d}_dim2_seed{s}" for d, s in KEYS]
BASELINE_RUNS = ["pca_dim2", "random_projection_dim2_seed0", "random_projection_dim2_seed1"]


STUDY_CONFIG = (
    "source=sample",
    f"epochs={EPOCHS}",
    "seeds=[0,1]",
    "baselines=[pca,random_projection]",
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished study on the offline sample: (folder, snakemake's first output)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("sample") / "study")
    run = snakemake(workdir, "--cores", "2", "--config", *STUDY_CONFIG)
    return workdir, run


def test_dataset_is_the_stratified_sample(study):
    workdir, _ = study
    with np.load(workdir / "results/data/sample-test0.2/dataset.npz", allow_pickle=False) as data:
        assert data["x_train"].shape == (4000, 28, 28) and data["x_train"].dtype == np.uint8
        assert data["x_test"].shape == (1000, 28, 28)
        assert np.bincount(data["y_test"]).tolist() == [100] * 10


def test_models_history_and_hyperparameters(study):
    workdir, _ = study
    for (depth, seed), model in zip(KEYS, MODELS):
        folder = workdir / "results/mnist-sample/models" / model
        hparams = json.loads((folder / "hparams.json").read_text())
        assert hparams["widths"] == WIDTHS[:depth]
        assert (
            hparams["epochs"] == EPOCHS and hparams["seed"] == seed and hparams["latent_dim"] == 2
        )
        state = torch.load(folder / "model.pt", weights_only=True)
        weight_shapes = [tuple(v.shape) for k, v in state.items() if k.endswith("weight")]
        sizes = [784, *WIDTHS[:depth], 2]
        assert weight_shapes[: depth + 1] == list(zip(sizes[1:], sizes[:-1]))
        history = pd.read_csv(folder / "history.csv")
        assert list(history.columns) == HISTORY_LAYOUT
        assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
        assert np.isfinite(history[["train_loss", "test_loss"]]).all().all()
        # no validation split by default (validation_fraction: 0): all 4,000 images train
        assert history["val_loss"].isna().all()
        assert history["kept"].tolist() == [0] * (EPOCHS - 1) + [1]
        assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
        assert not (folder / "model.pt.checkpoint").exists()


def test_latent_parquet_schema_and_readers(study):
    workdir, _ = study
    for (depth, seed), model in zip(KEYS, MODELS):
        path = workdir / "results/mnist-sample/latents" / f"{model}.parquet"
        table = pq.read_table(path)
        assert [(f.name, str(f.type)) for f in table.schema] == [
            ("split", "string"),
            ("index", "int32"),
            ("label", "int32"),
            ("z0", "float"),
            ("z1", "float"),
        ]
        metadata = json.loads(table.schema.metadata[b"aedepth"])
        assert metadata == {
            "model": model,
            "method": "autoencoder",
            "depth": depth,
            "latent_dim": 2,
            "seed": seed,
            "arm": "article",
            "training": "fixed",
            "widths": WIDTHS[:depth],
            "dataset": "mnist",
            "source": "sample",
        }
        frame = pd.read_parquet(path)
        assert frame["split"].value_counts().to_dict() == {"train": 4000, "test": 1000}
        assert frame.groupby("split")["index"].max().to_dict() == {"train": 3999, "test": 999}
        assert frame["label"].between(0, 9).all()
        assert np.isfinite(frame[["z0", "z1"]]).all().all()
        assert frame[["z0", "z1"]].abs().max().max() <= 1.0  # tanh latent
        assert pl.read_parquet(path).height == 5000
        count = duckdb.sql(f"select count(*) from '{path}' where split = 'test'").fetchall()[0][0]
        assert count == 1000


def test_baseline_latents_have_the_models_schema(study):
    workdir, _ = study
    for run in BASELINE_RUNS:
        frame = pd.read_parquet(workdir / "results/mnist-sample/latents" / f"{run}.parquet")
        assert list(frame.columns) == ["split", "index", "label", "z0", "z1"]
        assert frame["split"].value_counts().to_dict() == {"train": 4000, "test": 1000}
    metadata = json.loads(
        pq.read_table(
            workdir / "results/mnist-sample/latents/random_projection_dim2_seed1.parquet"
        ).schema.metadata[b"aedepth"]
    )
    assert metadata == {
        "model": "random_projection_dim2_seed1",
        "method": "random_projection",
        "latent_dim": 2,
        "seed": 1,
        "dataset": "mnist",
        "source": "sample",
    }


def test_summary_has_one_row_per_model_and_baseline_run(study):
    workdir, _ = study
    summary = pd.read_csv(workdir / "results/mnist-sample/summary.csv")
    assert list(summary.columns) == SUMMARY_LAYOUT
    assert summary["model"].tolist() == [*MODELS, *BASELINE_RUNS]
    assert (
        summary["method"].tolist()
        == ["autoencoder"] * len(MODELS) + ["pca"] + ["random_projection"] * 2
    )
    assert (summary["n_test"] == 1000).all()
    for metric in METRICS:
        assert summary[metric].map(math.isfinite).all(), metric
    for bounded in ("knn_accuracy", "kmeans_nmi", "trustworthiness"):
        assert summary[bounded].between(0, 1).all(), bounded
    assert summary["silhouette"].between(-1, 1).all()
    assert (summary[["davies_bouldin", "calinski_harabasz", "reconstruction_mse"]] > 0).all().all()
    models = summary[summary["method"] == "autoencoder"]
    assert (models["kept_epoch"] == EPOCHS).all()  # no early stopping by default
    assert np.allclose(models["loss_gap"], models["test_loss"] - models["train_loss"])
    assert models["val_loss"].isna().all()  # no validation split by default
    baselines = summary[summary["method"] != "autoencoder"]
    assert baselines[LOSS_COLUMNS + ["depth", "arm", "params", "widths"]].isna().all().all()
    assert (models["arm"] == "article").all() and (models["training"] == "fixed").all()
    assert models["params"].tolist() == [
        {1: 787_786, 2: 1_087_586, 3: 1_146_986}[d] for d in models["depth"]
    ]
    assert models["still_improving"].isna().all()  # 2 epochs are too few to call a trend
    assert baselines["seed"].isna().tolist() == [True, False, False]  # pca is not seeded
    # a linear map of the pixels is not trained: PCA beats a random projection
    pca, projections = baselines.iloc[0], baselines.iloc[1:]
    assert (pca["knn_accuracy"] > projections["knn_accuracy"]).all()
    # every per-model JSON agrees with its summary row
    for model in MODELS:
        record = json.loads(
            (workdir / "results/mnist-sample/metrics" / f"{model}.json").read_text()
        )
        row = summary.set_index("model").loc[model]
        assert record["knn_accuracy"] == pytest.approx(row["knn_accuracy"])


def test_intervals_comparisons_and_findings(study):
    workdir, _ = study
    intervals = pd.read_csv(workdir / "results/mnist-sample/depth_intervals.csv")
    assert list(intervals.columns) == INTERVAL_LAYOUT
    assert intervals.groupby("method", sort=False).size().to_dict() == {
        "autoencoder": len(DEPTHS) * (len(METRICS) + 1),  # and the loss gap
        "pca": len(METRICS),
        "random_projection": len(METRICS),
    }
    seeded = intervals[intervals["method"] != "pca"]
    assert (seeded["n_seeds"] == len(SEEDS)).all()
    assert (seeded["ci_low"] <= seeded["mean"]).all()
    assert (seeded["mean"] <= seeded["ci_high"]).all()
    comparisons = pd.read_csv(workdir / "results/mnist-sample/depth_comparisons.csv")
    assert list(comparisons.columns) == COMPARISON_LAYOUT
    assert comparisons[["previous_depth", "depth"]].drop_duplicates().values.tolist() == [
        [1, 2],
        [2, 3],
    ]
    assert set(comparisons["verdict"]) <= set(VERDICTS)
    findings = (workdir / "results/mnist-sample/findings.md").read_text()
    assert "Seeds trained: 2 (0, 1)" in findings
    assert "of 9" not in findings  # no counts of metrics
    primary = pd.read_csv(workdir / "results/mnist-sample/primary_comparisons.csv")
    assert list(primary.columns) == PRIMARY_LAYOUT
    assert set(primary["verdict"]) <= set(PRIMARY_VERDICTS)
    assert (primary["n_pairs"] == len(SEEDS)).all() and (primary["n_images"] == 1000).all()
    # the headline's sentence per step: the primary metric, its difference and the interval
    # its verdict is read off (over seeds and test images), the pairs and the budget
    headline = [line for line in findings.splitlines() if line.startswith("- **")]
    for row, sentence in zip(primary.itertuples(), headline):
        assert sentence.startswith(
            f"- **{row.previous_depth} → {row.depth} hidden layers: knn_accuracy "
        ), sentence
        assert f"% for the 2 steps together; {len(SEEDS)} paired seeds, {EPOCHS} epochs" in sentence
        verdict = check_primary_sentence(sentence.strip("-* "), 0.01, True, len(primary))
        assert verdict == row.verdict
    per_image = pq.read_table(workdir / "results/mnist-sample/per_image/depth1_dim2_seed0.parquet")
    assert per_image.column_names == PER_IMAGE_LAYOUT and per_image.num_rows == 1000
    summary_knn = pd.read_csv(workdir / "results/mnist-sample/summary.csv").set_index("model")
    assert per_image.column("knn_accuracy").to_numpy().mean() == pytest.approx(
        summary_knn.loc["depth1_dim2_seed0", "knn_accuracy"], abs=1e-12
    )
    assert "Baselines: pca, random_projection." in findings
    assert "| baseline pca, latent size 2 |" in findings
    assert "| baseline random_projection, latent size 2 |" in findings
    for row in comparisons.itertuples():
        assert f"| {row.previous_depth} → {row.depth} | {row.metric} |" in findings


@pytest.mark.parametrize(
    ("figure", "min_size"),
    [
        *[(f"depth{d}_dim2_reconstructions.png", (150, 700)) for d in DEPTHS],
        *[(f"depth{d}_dim2_latent.png", (400, 500)) for d in DEPTHS],
        ("reconstructions.png", (350, 700)),
        ("metrics_vs_depth.png", (700, 1000)),
        ("training_curves.png", (300, 900)),
        ("answer.png", (300, 900)),
        ("gap_vs_depth.png", (300, 400)),
    ],
)
def test_figures_are_real_images(study, figure, min_size):
    workdir, _ = study
    image = matplotlib.image.imread(workdir / "results/mnist-sample/figures" / figure)
    height, width = image.shape[:2]
    assert height >= min_size[0] and width >= min_size[1], (figure, image.shape)
    assert image[..., :3].std() > 0.05, f"{figure} looks blank"


def test_combined_figure_is_taller_than_one_depth(study):
    workdir, _ = study
    figures = workdir / "results/mnist-sample/figures"
    combined = matplotlib.image.imread(figures / "reconstructions.png")
    single = matplotlib.image.imread(figures / "depth1_dim2_reconstructions.png")
    assert combined.shape[0] > 1.5 * single.shape[0]  # one row per depth below the originals


def test_costly_rules_have_benchmarks_and_logs(study):
    workdir, _ = study
    for model in MODELS:
        benchmark = pd.read_csv(
            workdir / "results/mnist-sample/benchmarks/train" / f"{model}.tsv", sep="\t"
        )
        assert benchmark["s"].iloc[0] > 0 and benchmark["max_rss"].iloc[0] > 0
        log = (workdir / "results/mnist-sample/logs/train" / f"{model}.log").read_text()
        assert f"epoch {EPOCHS}/{EPOCHS}" in log


def test_training_jobs_start_longest_first(study):
    # their Snakemake priority is their work: deeper models (more parameters) start first, so
    # the shortest end the run while the other CPUs draw the finished models' figures
    workdir, _ = study
    started = {}  # run -> start time: the benchmark file's mtime (the job's end) less its seconds
    for model in MODELS:
        tsv = workdir / "results/mnist-sample/benchmarks/train" / f"{model}.tsv"
        started[model] = tsv.stat().st_mtime - pd.read_csv(tsv, sep="\t")["s"].iloc[0]
    depth = {model: d for model, (d, _) in zip(MODELS, KEYS)}
    late = [
        (deeper, model)
        for deeper in MODELS
        for model in MODELS
        if depth[deeper] > depth[model] and started[deeper] > started[model] + 2
    ]
    assert not late, f"started after a shallower model: {late}; {started}"


def test_second_run_has_nothing_to_do(study):
    workdir, _ = study
    again = snakemake(workdir, "--cores", "2", "--config", *STUDY_CONFIG)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_both_arms_train_their_shared_deepest_model_once(tmp_path):
    # the matched arm's depth-3 model has the article's widths: one training, copied
    workdir = copy_workflow(tmp_path / "study")
    options = ("source=sample", "epochs=1", "depths=[2,3]", "seeds=[0]", "baselines=[pca]")
    run = snakemake(workdir, "--cores", "2", "--config", *options, "arms=[article,matched_params]")
    jobs = jobs_in(run.stdout + run.stderr)
    copied, trained_as = "depth3_dim2_seed0_armmatched-params", "depth3_dim2_seed0"
    assert sorted(job for job in jobs if job.startswith("train(")) == [
        "train(run=depth2_dim2_seed0)",
        "train(run=depth2_dim2_seed0_armmatched-params)",
        "train(run=depth3_dim2_seed0)",
    ]
    assert {job for job in jobs if job.startswith("copy_training(")} == {
        f"copy_training(run={copied})"
    }
    results = workdir / "results/mnist-sample"
    ours, theirs = results / "models" / copied, results / "models" / trained_as
    for name in ("model.pt", "history.csv"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes()
    hparams = json.loads((ours / "hparams.json").read_text())
    original = json.loads((theirs / "hparams.json").read_text())
    assert hparams["arm"] == "matched_params" and hparams["trained_as"] == trained_as
    assert {k: v for k, v in hparams.items() if k not in ("arm", "trained_as")} == {
        k: v for k, v in original.items() if k != "arm"
    }
    assert not (results / "benchmarks/train" / f"{copied}.tsv").exists()
    log = (results / "logs/copy_training" / f"{copied}.log").read_text()
    assert f"the same training as {trained_as}" in log
    # scored like any model: the same numbers as the article's, under its own id and arm
    metrics = json.loads((results / "metrics" / f"{copied}.json").read_text())
    article = json.loads((results / "metrics" / f"{trained_as}.json").read_text())
    assert (metrics["model"], metrics["arm"]) == (copied, "matched_params")
    same = {k: v for k, v in metrics.items() if k not in ("model", "arm")}
    assert same == {k: v for k, v in article.items() if k not in ("model", "arm")}


def _download_config(folder, mirrors, checksums):
    path = folder / "download.yaml"
    path.write_text(yaml.safe_dump({"mirrors": mirrors, "checksums": checksums}))
    return path


def run_download_study(workdir, configfile, *options):
    """The small download study (depths 1 and 2, one seed, one epoch) with `configfile`."""
    return snakemake(
        workdir, *options, "--cores", "2", "--configfile", str(configfile),
        "--config", "epochs=1", "depths=[1,2]", "seeds=[0]",
    )  # fmt: skip


def test_download_verifies_trains_and_renders(tmp_path):
    served = tmp_path / "mirror"
    checksums = write_fake_mnist(served, n_train=120, n_test=40)
    workdir = copy_workflow(tmp_path / "study")
    with serve_folder(served) as base_url:
        configfile = _download_config(tmp_path, [f"{base_url}/"], checksums)
        run_download_study(workdir, configfile)
        # Another mirror list: the downloads rerun, but verified bytes are the same bytes,
        # so nothing downstream of them is stale (the study's config snapshot is rewritten).
        configfile = _download_config(
            tmp_path, [closed_port_url() + "/", f"{base_url}/"], checksums
        )
        plan = run_download_study(workdir, configfile, "-n")
        planned = {job.split("(")[0] for job in jobs_in(plan.stdout + plan.stderr)}
        assert planned == {"download_idx", "study_snapshot"}, plan.stdout
    # the fake files' own checksums: a data folder of their own (see aedepth.config.data_folder)
    [data] = (workdir / "results/data").iterdir()
    assert data.name.startswith("mnist-md5-")
    for name, md5 in checksums.items():
        raw = (data / "idx" / name).read_bytes()
        assert hashlib.md5(raw).hexdigest() == md5
    log = (data / "logs/download_idx/train-images-idx3-ubyte.log").read_text()
    assert "train-images-idx3-ubyte.gz" in log
    summary = pd.read_csv(workdir / "results/mnist/summary.csv")
    assert summary["model"].tolist() == ["depth1_dim2_seed0", "depth2_dim2_seed0", "pca_dim2"]
    assert (workdir / "results/mnist/figures/reconstructions.png").stat().st_size > 10_000


def test_download_rejects_a_corrupted_copy(tmp_path):
    served = tmp_path / "mirror"
    checksums = write_fake_mnist(served, n_train=120, n_test=40)
    # Published checksums of the genuine files, but the server holds other bytes.
    checksums["t10k-labels-idx1-ubyte"] = "0" * 32
    workdir = copy_workflow(tmp_path / "study")
    with serve_folder(served) as base_url:
        configfile = _download_config(tmp_path, [f"{base_url}/"], checksums)
        run = snakemake(
            workdir,
            "--cores",
            "2",
            "--configfile",
            str(configfile),
            "--config",
            "epochs=1",
            check=False,
        )
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("aedepth error:")]
    assert len(errors) == 1, run.stderr
    assert "t10k-labels-idx1-ubyte" in errors[0] and "MD5" in errors[0]
    assert not list((workdir / "results/data").rglob("t10k-labels-idx1-ubyte"))
    assert not list((workdir / "results/data").rglob("dataset.npz"))


def test_every_sentence_of_a_four_depth_two_latent_size_study_holds_for_its_numbers(tmp_path):
    """A careful reader's check (tests/sentences.py) of every headline sentence and secondary
    line of a study with depths 1-4 and latent sizes 2 and 8: 6 primary steps."""
    workdir = copy_workflow(tmp_path / "study")
    snakemake(
        workdir, "--cores", "2", "--config", "source=sample", "epochs=1", "seeds=[0,1]",
        "depths=[1,2,3,4]", "latent_dims=[2,8]", "baselines=[pca]", "study=grid", "hidden_sizes=[64,32,16,8]",
        "--until", "compare_depths",
    )  # fmt: skip
    findings = (workdir / "results/grid/findings.md").read_text()
    primary = pd.read_csv(workdir / "results/grid/primary_comparisons.csv")
    assert len(primary) == 6 and (primary["confidence"] == 1 - 0.05 / 6).all()
    headline = [line.strip("-* ") for line in findings.splitlines() if line.startswith("- **")]
    assert len(headline) == 6
    for row, sentence in zip(primary.itertuples(), headline):
        assert check_primary_sentence(sentence, 0.01, True, 6) == row.verdict
        assert f"(latent size {row.latent_dim})" in sentence
    parts = [line.split(": ", 1)[1] for line in findings.splitlines() if line.startswith("  - ")]
    checked = [check_secondary_part(p) for p in "; ".join(parts).split("; ")
               if "(the primary metric" not in p]  # fmt: skip
    assert len(checked) == 6 * (len(METRICS) - 1)
