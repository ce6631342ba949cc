# Config validation, the study's grid of runs, and the helpers that name every file.
import os
import re
import sys
from pathlib import Path

SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
# The workflow runs from a plain clone (a Slurm node has nothing installed): the package is
# imported from here, first, here and in every job (PYTHONPATH goes ahead of site-packages,
# where `pip install -e .` of another checkout would otherwise win over the script's folder,
# which Snakemake appends to a job's path).
sys.path.insert(0, str(SCRIPTS))
from aedepth.imports import jobs_import_from

jobs_import_from(SCRIPTS)

from aedepth.baselines import BASELINES
from aedepth.config import (
    IDX_NAMES,
    ConfigError,
    check_config_files,
    coerce_cli_lists,
    data_folder,
    data_sizes,
    data_settings,
    idx_paths,
    image_shape,
    load_schema,
    validate_config,
)
from aedepth.grid import (
    RESULTS,
    baseline_hparams,
    build_grid,
    setting_label,
    study_path,
    training_hparams,
)
from aedepth.cpus import training_priority, training_reservation, usable_cpus
from aedepth.gpus import visible_gpus
from aedepth.sources import IDX, source_kind
from aedepth.sources import source_files as source_paths
from aedepth.imports import package_modules
from aedepth.markup import report_param
from aedepth.memory import (
    check_training_memory,
    memory_limit,
    resource_mb,
    training_memory,
)
from aedepth.studies import NO_STUDY, QUESTION, SNAPSHOT, find_studies, study_digest

config.update(coerce_cli_lists(config))
try:
    # Snakemake has read them already: the size bound keeps what the checks walk small
    check_config_files(workflow.configfiles)
    validate_config(
        config, load_schema(SCRIPTS.parent / "schemas" / "config.schema.yaml")
    )
    # the images' (height, width, channels): the models' input size
    IMAGE_SHAPE = image_shape(config)
    GRID = build_grid(config, BASELINES, IMAGE_SHAPE)
except ConfigError as error:
    # One line and exit 1: a WorkflowError would wrap it in file/line noise.
    print(f"aedepth: {error}", file=sys.stderr)
    sys.exit(1)

DATA = data_settings(config)
# The study's own folder, results/<study>: every output but the shared data lives under it.
STUDY = GRID.root
# The downloaded and prepared data, shared by the studies that read the same (see data_folder).
DATA_FOLDER = data_folder(config)
DATASET = f"{DATA_FOLDER}/dataset.npz"
# The prepared data as every job's input: the arrays as `ancient` (too large for Snakemake to
# checksum, and a rebuild gives them a new mtime), and beside them their fingerprint
# (dataset.json: the arrays' SHA-256), which is not. So a rebuild with the same content (e.g.
# after another study's --delete-all-output) reruns nothing that reads it: Snakemake sees the
# small file's checksum unchanged. A rebuild in this run (the data's code or source files
# changed) reruns its readers, and in the same run: with only ancient links, Snakemake 9.27
# would skip readers that are stale for reasons of their own (snakemake/snakemake#4166).
DATA_INPUT = ancient(DATASET)
DATA_ID = f"{DATA_FOLDER}/dataset.json"
ENV = "../../envs/aedepth.yaml"
# Baseline files are the runs' own paths, with the id split into method and setting.
BASELINE_LATENTS = study_path(STUDY, "latents", "{method}_{setting}")
BASELINE_METRICS = study_path(STUDY, "metrics", "{method}_{setting}")


def in_study(path):
    """`path` (wildcards allowed) inside the study's folder: how rules name their files."""
    return f"{STUDY}/{path}"


def in_data(path):
    """`path` inside the shared data folder."""
    return f"{DATA_FOLDER}/{path}"


def one_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    run=one_of(run.id for run in GRID.models),
    group=one_of(GRID.groups()),
    method=one_of(GRID.baselines),
    setting=one_of(run.id.removeprefix(f"{run.method}_") for run in GRID.baseline_runs),


def code_of(script):
    """The aedepth modules `script` imports: inputs, so editing one reruns its users.

    Relative to the working directory (Snakemake changes into it before reading the rules):
    the input trigger records these paths, so absolute ones, or workflow.source_path's
    (which records the absolute origin), would rerun every job once the project is moved.
    """
    return [os.path.relpath(path) for path in package_modules(SCRIPTS / script)]


def run_of(wildcards):
    return GRID.run(
        wildcards.run
        if "run" in wildcards.keys()
        else f"{wildcards.method}_{wildcards.setting}"
    )


def trained_by(wildcards):
    """The run that trains the model of this model run (itself, or one with the same training)."""
    return GRID.run(GRID.trained_as[wildcards.run])


def of_runs(kind, runs=None):
    """The `kind` file (see aedepth.grid.PATHS) of every model, or of `runs`, in grid order."""
    return [run.path(kind) for run in (GRID.models if runs is None else runs)]


def of_group(kind):
    """Input function: the `kind` file of every seed of the job's group."""
    return lambda wildcards: of_runs(kind, GRID.groups()[wildcards.group])


def question_first(wildcards):
    """Nothing, where the study's question.json exists; else the declare_question checkpoint,
    which training then waits for: a study records its question before its first model. No
    link once it exists: with one (even `ancient`), a changed question would rerun
    declare_question and Snakemake 9.27 would then not check training for reasons of its own,
    e.g. a changed epochs in the same run (snakemake/snakemake#4166). Either way the input
    list is empty once the checkpoint has run, so the job's recorded inputs never change.
    """
    if not Path(in_study(QUESTION)).exists():
        checkpoints.declare_question.get()
    return []


def source_files(wildcards):
    if config["source"] == "sample":
        return []
    if config["source"] == "download":
        # ancient: a verified re-download (say, after `mirrors` changed) holds the same bytes,
        # so its new mtime must not rerun the study; changed checksums rerun via params.
        return [ancient(in_data(f"idx/{name}")) for name in IDX_NAMES]
    if source_kind(config["source"]) != IDX:  # an image folder's images, or the .npz
        return [str(path) for path in source_paths(config["source"])]
    return [str(path) for path in idx_paths(config["source"], IDX_NAMES)]


def training_cores():
    """Cores each training job reserves of --cores: at least its training_threads, more where
    --cores exceeds the usable CPUs, so that no more jobs run side by side than fit on them
    (aedepth.cpus.training_reservation). Scheduling only: jobs compute with training_threads
    (a param), so --cores changes no result. Without --cores (a cluster executor, --unlock,
    ...) it is training_threads: a Slurm job asks for as many CPUs (cpus_per_task: threads).
    """
    try:
        cores = workflow.cores
    except WorkflowError:  # --unlock, --summary, ... run no job and need no --cores
        cores = None
    if not isinstance(cores, int):
        return config["training_threads"]
    return training_reservation(cores, usable_cpus(), config["training_threads"])


def training_gpu():
    """1 where training jobs train on a GPU (the `gpu` resource: --resources gpu=K runs at
    most K at once; the Slurm profile turns it into --gpus=1), else 0."""
    if config["device"] == "cpu":
        return 0
    return int(config["device"] == "cuda" or bool(visible_gpus()))


# The training and test images each training job reads (None: a header the job will report).
DATA_SIZES = data_sizes(config)


def training_estimate(run):
    """The peak memory of the job training `run`'s model (aedepth.memory): its mem_mb."""
    return training_memory(
        training_hparams(run, config, IMAGE_SHAPE),
        *(DATA_SIZES or (0, 0)),
        on_gpu=bool(training_gpu()),
    )


def training_mem_mb(wildcards):
    """mem_mb of a training job: its estimate, unless the user set one (set-resources)."""
    return training_estimate(run_of(wildcards)).mem_mb


def training_memory_limit():
    """What one training job may have (aedepth.memory.memory_limit): resource train:mem_mb
    where the user set it (a profile's set-resources, as Slurm's --mem), else --resources
    mem_mb, else this machine's memory. Read only to refuse a study: never a param."""
    resources = workflow.resource_settings
    return memory_limit(
        resource_mb(resources.overwrite_resources.get("train", {}).get("mem_mb")),
        resource_mb(resources.resources.get("mem_mb")),
    )


# A training that cannot fit in memory is refused now, in one line, not killed in its job.
if DATA_SIZES is not None:
    try:
        check_training_memory(
            config,
            {
                run.id: training_hparams(run, config, IMAGE_SHAPE)
                for run in GRID.trained
            },
            DATA_SIZES,
            training_memory_limit(),
            on_gpu=bool(training_gpu()),
        )
    except ConfigError as error:
        print(f"aedepth: {error}", file=sys.stderr)
        sys.exit(1)


def metric_settings():
    return {
        "knn_neighbors": config["knn_neighbors"],
        "kmeans_clusters": config["kmeans_clusters"],
        "trustworthiness_samples": config["trustworthiness_samples"],
        "trustworthiness_neighbors": config["trustworthiness_neighbors"],
    }


def group_setting(wildcards):
    """The group's axis values in words, e.g. "depth 1, latent size 2" (captions, titles)."""
    run = GRID.groups()[wildcards.group][0]
    return setting_label(run.record(), GRID.axis_names, GRID.labels, GRID.omitted)


def group_labels(figure):
    """Report labels of a per-group figure: the group's axis values, then its name. The name
    last: Snakemake shows a label after the first with two values as a toggle, so a group's
    row switches between its latent space and reconstructions."""

    def labels(wildcards):
        run = GRID.groups()[wildcards.group][0]
        values = {
            GRID.labels[name]: str(value)
            for name, value in run.values
            if name not in GRID.omitted or value != GRID.omitted[name]
        }
        return values | {GRID.labels["seed"]: "median kNN", "figure": figure}

    return labels


def compared_studies():
    """{folder: digest of its snapshot and intervals} of every finished study under results/,
    as found when the workflow starts: `compare` tabulates what exists, builds nothing, and
    reruns when a study is added, removed or changes (the digests are its params)."""
    found = find_studies(RESULTS) if Path(RESULTS).is_dir() else []
    return {str(folder): study_digest(folder) for folder in found}


def final_outputs():
    fixed = [
        SNAPSHOT,
        QUESTION,
        "summary.csv",
        "summary.html",
        "depth_intervals.csv",
        "depth_comparisons.csv",
        "primary_comparisons.csv",
        "findings.md",
        "figures/answer.png",
        "figures/gap_vs_depth.png",
        "figures/reconstructions.png",
        "figures/metrics_vs_depth.png",
        "figures/training_curves.png",
        "explorer.html",
    ]
    return [
        *map(in_study, fixed),
        *of_runs("latents", GRID.runs),
        *expand(
            in_study("figures/{group}_{kind}.png"),
            group=GRID.groups(),
            kind=["reconstructions", "latent"],
        ),
    ]


# A folder where the study writes a file would pass for that file, finished: refuse it.
_written = [
    *final_outputs(),
    *(
        run.path(kind)
        for run in GRID.models
        for kind in ("weights", "hparams", "history")
    ),
    *of_runs("metrics", GRID.runs),
    *of_runs("per_image"),
    DATASET,
    DATA_ID,
]
_folders = [path for path in _written if os.path.isdir(path)]
if _folders:
    print(
        f"aedepth: {_folders[0]} is a folder where aedepth writes a file: delete it and run again",
        file=sys.stderr,
    )
    sys.exit(1)


onstart:
    # device: cuda where jobs run here and no GPU is visible would fail every training job after
    # the data step: refuse it before any job. (Under a cluster executor the GPUs are the
    # nodes', not this machine's; the executor is known here, not when the rules are read.)
    if config["device"] == "cuda" and workflow.local_exec and not visible_gpus():
        print(
            "aedepth: config key 'device' = 'cuda' but no GPU is visible here (no NVIDIA GPU, "
            "or CUDA_VISIBLE_DEVICES empty): use device: auto or cpu, or run where a GPU is",
            file=sys.stderr,
        )
        sys.exit(1)
    # `compare` with no finished study to tabulate: one line, before its job would fail. (The
    # one onstart of the workflow: Snakemake keeps only the last one defined.)
    if not compared_studies() and any(
        job.rule.name == "compare" for job in workflow.dag.needrun_jobs()
    ):
        print(f"aedepth: {NO_STUDY}", file=sys.stderr)
        sys.exit(1)
