# Config validation and the helpers that name every file of the study.
import os
import sys
from pathlib import Path

SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from aedepth.config import (
    ConfigError,
    coerce_cli_lists,
    data_settings,
    encoder_widths,
    idx_paths,
    load_schema,
    validate_config,
)
from aedepth.imports import package_modules

config.update(coerce_cli_lists(config))
try:
    validate_config(
        config, load_schema(SCRIPTS.parent / "schemas" / "config.schema.yaml")
    )
except ConfigError as error:
    # One line and exit 1: a WorkflowError would wrap it in file/line noise.
    print(f"aedepth: {error}", file=sys.stderr)
    sys.exit(1)

DATA = data_settings(config)
IDX_NAMES = list(DATA["checksums"])
DATASET = "results/data/dataset.npz"
MODELS = [
    (depth, latent, seed)
    for latent in config["latent_dims"]
    for depth in config["depths"]
    for seed in config["seeds"]
]
WEIGHTS = "results/models/depth{depth}_dim{latent}_seed{seed}/model.pt"
HPARAMS = "results/models/depth{depth}_dim{latent}_seed{seed}/hparams.json"
HISTORY = "results/models/depth{depth}_dim{latent}_seed{seed}/history.csv"
LATENTS = "results/latents/depth{depth}_dim{latent}_seed{seed}.parquet"
METRICS = "results/metrics/depth{depth}_dim{latent}_seed{seed}.json"
PCA_METRICS = "results/metrics/pca_dim{latent}.json"
ENV = "../../envs/aedepth.yaml"


wildcard_constraints:
    depth=r"\d+",
    latent=r"\d+",
    seed=r"\d+",


def code_of(script):
    """The aedepth modules `script` imports: inputs, so editing one reruns its users.

    Relative to the working directory (Snakemake changes into it before reading the rules):
    the input trigger records these paths, so absolute ones, or workflow.source_path's
    (which records the absolute origin), would rerun every job once the project is moved.
    """
    return [os.path.relpath(path) for path in package_modules(SCRIPTS / script)]


def per_model(pattern, depth=None, latent=None):
    """`pattern` for every model (or those of one depth / latent size), always in one order."""
    return [
        pattern.format(depth=d, latent=k, seed=s)
        for d, k, s in MODELS
        if depth in (None, d) and latent in (None, k)
    ]


def per_seed(pattern):
    """Input function: `pattern` for every seed of the job's depth and latent size."""
    return lambda wildcards: per_model(
        pattern, depth=int(wildcards.depth), latent=int(wildcards.latent)
    )


def source_files(wildcards):
    if config["source"] == "sample":
        return []
    if config["source"] == "download":
        # ancient: a verified re-download (say, after `mirrors` changed) holds the same bytes,
        # so its new mtime must not rerun the study; changed checksums rerun via params.
        return [ancient(f"results/data/idx/{name}") for name in IDX_NAMES]
    return [str(path) for path in idx_paths(config["source"], IDX_NAMES)]


def training_hparams(wildcards):
    """Exactly what one training job depends on: its own widths, not the whole list."""
    depth = int(wildcards.depth)
    return {
        "depth": depth,
        "widths": encoder_widths(config["hidden_sizes"], depth),
        "latent_dim": int(wildcards.latent),
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "learning_rate": config["learning_rate"],
        "early_stopping_patience": config["early_stopping_patience"],
        "seed": int(wildcards.seed),
    }


def training_threads():
    """Threads per training job, so that `--cores N` keeps N cores busy on any machine.

    Training jobs scale better side by side than by threads (two 1-thread jobs train ~6 %
    more than one 2-thread job on 2 cores), so with at least as many jobs as cores each job
    gets 1 thread and the jobs run in parallel; with few jobs on many cores (3 jobs, 64
    cores) the cores are split between them, up to 8 each: a batch of 128 rows is too
    little work per matmul for more. Without --cores (e.g. a cluster executor) it is 1.
    """
    try:
        cores = workflow.cores
    except WorkflowError:  # --unlock, --summary, ... run no job and need no --cores
        cores = 1
    cores = cores if isinstance(cores, int) else 1
    return max(1, min(8, cores // len(MODELS)))


def metric_settings():
    return {
        "knn_neighbors": config["knn_neighbors"],
        "kmeans_clusters": config["kmeans_clusters"],
        "trustworthiness_samples": config["trustworthiness_samples"],
        "trustworthiness_neighbors": config["trustworthiness_neighbors"],
    }


def final_outputs():
    return [
        "results/summary.csv",
        "results/summary.html",
        "results/depth_intervals.csv",
        "results/depth_comparisons.csv",
        "results/findings.md",
        *per_model(LATENTS),
        *expand(
            "results/figures/depth{depth}_dim{latent}_{kind}.png",
            depth=config["depths"],
            latent=config["latent_dims"],
            kind=["reconstructions", "latent"],
        ),
        "results/figures/reconstructions.png",
        "results/figures/metrics_vs_depth.png",
        "results/figures/training_curves.png",
    ]
