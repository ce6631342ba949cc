"""The study as data: its axes, its runs and its baselines, built once from the config.

A run is one record: a method (the autoencoder, or a baseline by name), its value on each
axis, an id built from those values, its output paths and its hyperparameters. Rules,
scripts, statistics and figures iterate over runs and key on their axis values; nothing
else spells out a run's name. Model ids read ``depth{depth}_dim{latent_dim}_seed{seed}``
(each axis's tag and value, in the order of the config's `axes`), baseline ids
``{method}_dim{latent_dim}`` (plus ``_seed{seed}`` for a seeded baseline).

Two axes have a role in the question: `depth` is the one compared (each depth against the
next smaller one) and `seed` the one replicated (intervals are taken over seeds, and
comparisons pair runs that share a seed). Every other axis (latent size, or one a user
adds) is a condition: the study is answered separately for each combination of them.

Model runs whose training hyperparameters differ only in an arm's or regime's name (the
matched arm's deepest model is the article's) share one training: `Grid.trained_as` names
the run that trains it, and the others get copies of its model.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from aedepth.families import DEFAULT as DEFAULT_FAMILY
from aedepth.families import FAMILIES, MLP, Shape, family_of
from aedepth.jobs import ConfigError

# The (height, width, channels) of the IDX files' and the sample's images, and a model's input
# size on them. Other sources' shapes are read at parse time (aedepth.sources.source_shape) and
# handed in: this module never reads data, so its users' jobs do not depend on that code.
MNIST_SHAPE = (28, 28, 1)
MNIST_PIXELS = math.prod(MNIST_SHAPE)

AUTOENCODER = "autoencoder"
# The metrics a study's headline shows: the findings' levels, the answer figure and the
# columns of results/studies.csv (here, not in aedepth.metrics: Snakemake imports this module
# at parse time, and metrics imports scikit-learn).
HEADLINE_METRICS = ("knn_accuracy", "silhouette", "trustworthiness", "reconstruction_bce")
COMPARED = "depth"
REPLICATE = "seed"
# The axes every study has: the two above, and the latent size every model and baseline needs.
REQUIRED_AXES = (COMPARED, "latent_dim", REPLICATE)
# Optional axes the code gives a meaning: the arm picks how widths are chosen (the article's,
# or scaled to a parameter budget), the training regime a set of training settings.
ARM = "arm"
ARTICLE = "article"
MATCHED = "matched_params"
REGIME = "training"
# The model family (aedepth.families). A study that lists only the MLP has no such axis, so
# its ids, records and hyperparameters are those of every study before the conv family;
# `architectures: [mlp, conv]` adds it (unless `axes` spells it out), the MLP's ids unchanged.
ARCHITECTURE = "architecture"
# Axes whose values name settings the training hyperparameters already spell out (an arm's
# widths, a regime's epochs, ...): runs that differ in nothing else train the same model, e.g.
# the matched arm's deepest model is the article's own (same widths, same seed).
NAMING_AXES = (ARM, REGIME)

# Every study writes under results/<study>/ (docs/outputs.md, "Studies side by side"); these entries of
# results/ belong to no study, so no study may take their names (compared case-blind: macOS).
RESULTS = "results"
SHARED_ENTRIES = ("data", "logs", "studies.csv", "studies.html")
# A study's name is a folder name: letters, digits, '.', '_', '+' and '-', not starting with '.'.
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # fullmatch: no trailing newline
MAX_STUDY_NAME = 100
# Where each run's files live inside its study's folder; "{run}" is the run's id (the Snakemake
# wildcard of that name).
PATHS = {
    "weights": "models/{run}/model.pt",
    "hparams": "models/{run}/hparams.json",
    "history": "models/{run}/history.csv",
    "latents": "latents/{run}.parquet",
    "metrics": "metrics/{run}.json",
    "per_image": "per_image/{run}.parquet",
}
# Hyperparameters every model takes from the config; an axis of the same name overrides one.
TRAINING_SETTINGS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "early_stopping_patience",
    "validation_fraction",
)
# Axis values appear in file names: letters, digits, '.', '+' and '-' only ('_' separates).
_ID_VALUE = re.compile(r"^[A-Za-z0-9.+-]+$")


@dataclass(frozen=True)
class Axis:
    name: str  # the value's name in hyperparameters, records and tables, e.g. "latent_dim"
    values_key: str  # the config key listing its values, e.g. "latent_dims"
    tag: str  # its prefix in run ids, e.g. "dim"
    label: str  # how figures and findings name it, e.g. "latent size"
    baselines: bool  # baselines are fitted per value too (latent size: yes; depth: no)
    omit: Any = None  # the value run ids leave out (its runs keep the ids they had before)


@dataclass(frozen=True)
class Run:
    """One run of the study: an autoencoder to train, or a baseline to fit."""

    method: str
    values: tuple[tuple[str, Any], ...]  # (axis name, value) in grid order
    id: str  # unique in the study; the {run} wildcard
    group: str  # the id without the seed: the runs a per-depth figure shows together
    root: str  # the study's folder, e.g. "results/mnist"

    def __getitem__(self, axis: str) -> Any:
        return dict(self.values)[axis]

    @property
    def is_model(self) -> bool:
        return self.method == AUTOENCODER

    def path(self, kind: str) -> str:
        return study_path(self.root, kind, self.id)

    def record(self) -> dict[str, Any]:
        """The identity columns of this run's row in metrics JSON and summary.csv."""
        return {"model": self.id, "method": self.method, **dict(self.values)}


def study_path(root: str, kind: str, run: str = "{run}") -> str:
    """The `kind` file (see PATHS) of `run` in the study folder `root`; by default the
    pattern with the {run} wildcard."""
    return f"{root}/{PATHS[kind].format(run=run)}"


def study_name(config: dict[str, Any]) -> str:
    """The study's name, its folder under results/: `study`, or else the dataset's name, with
    "-sample" when the source is the offline sample (so a sample study never writes into a
    full one's folder), e.g. "mnist", "mnist-sample"."""
    name = config.get("study")
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        # YAML, and Snakemake's --config, read study=007 as 7 and study=1_0 as 10
        raise ConfigError(
            f"config key 'study' = {name!r} was read as a number, not as you wrote it: "
            'quote it in YAML (study: "007") or start the name with a letter'
        )
    if name is None or name == "":
        name = config["dataset"] + ("-sample" if config["source"] == "sample" else "")
        key = f"the name derived from 'dataset' ({name!r})"
    else:
        name = str(name)
        key = f"config key 'study' = {name[:40]!r}{'...' if len(name) > 40 else ''}"
    if len(name) > MAX_STUDY_NAME:
        raise ConfigError(
            f"{key} has {len(name)} characters: use at most {MAX_STUDY_NAME} (it names a folder)"
        )
    if not _STUDY_NAME.fullmatch(name):
        raise ConfigError(
            f"{key} is not a folder name: set 'study' to letters, digits, '.', '_', '+' "
            "or '-', starting with a letter or digit"
        )
    if name.lower() in SHARED_ENTRIES:
        raise ConfigError(
            f"{key} is the name of results/{name.lower()}, which every study shares: "
            f"set 'study' to another name (not {', '.join(SHARED_ENTRIES)})"
        )
    return name


def study_root(config: dict[str, Any]) -> str:
    """The folder every output of the study lives in, e.g. "results/mnist"."""
    return f"{RESULTS}/{study_name(config)}"


def _format_value(value: Any) -> str:
    """A value as its run ids spell it: '_' separates the parts of an id, so it becomes '-'
    (matched_params -> matched-params)."""
    return (repr(value) if isinstance(value, float) else str(value)).replace("_", "-")


def _run_id(parts: list[tuple[Axis, Any]]) -> str:
    return "_".join(
        f"{axis.tag}{_format_value(value)}"
        for axis, value in parts
        if axis.omit is None or _format_value(value) != _format_value(axis.omit)
    )


def group_id(axes: tuple[Axis, ...], values: dict[str, Any]) -> str:
    """The id of the group of runs with these axis values (any seed), e.g. "depth1_dim2"."""
    return _run_id([(axis, values[axis.name]) for axis in axes if axis.name != REPLICATE])


@dataclass(frozen=True)
class Grid:
    axes: tuple[Axis, ...]
    runs: tuple[Run, ...]  # the models first, then each baseline's runs
    baselines: tuple[str, ...]
    root: str  # the study's folder (study_root), every run's files under it
    # model run id -> the id of the first model run (in grid order) that trains the same model:
    # itself where it is the first; that run's training is copied, not repeated
    trained_as: dict[str, str]

    @property
    def axis_names(self) -> list[str]:
        return [axis.name for axis in self.axes]

    @property
    def conditions(self) -> list[str]:
        """The axes that are neither compared nor replicated, e.g. ["latent_dim"]."""
        return [a.name for a in self.axes if a.name not in (COMPARED, REPLICATE)]

    @property
    def omitted(self) -> dict[str, Any]:
        """Axis name -> the value its ids (and figure labels) leave out, for axes that have one."""
        return {axis.name: axis.omit for axis in self.axes if axis.omit is not None}

    @property
    def labels(self) -> dict[str, str]:
        return {axis.name: axis.label for axis in self.axes}

    @property
    def models(self) -> list[Run]:
        return [run for run in self.runs if run.is_model]

    @property
    def trained(self) -> list[Run]:
        """The model runs that train: one per distinct training (see trained_as)."""
        return [run for run in self.models if self.trained_as[run.id] == run.id]

    @property
    def copied(self) -> list[Run]:
        """The model runs whose model another run trains."""
        return [run for run in self.models if self.trained_as[run.id] != run.id]

    @property
    def baseline_runs(self) -> list[Run]:
        return [run for run in self.runs if not run.is_model]

    def run(self, run_id: str) -> Run:
        return self._by_id[run_id]

    def pattern(self, kind: str) -> str:
        """The `kind` file of any run of the study, with the {run} wildcard."""
        return study_path(self.root, kind)

    def groups(self, method: str = AUTOENCODER) -> dict[str, list[Run]]:
        """Runs of `method` by group (all seeds of one setting of the other axes), in order."""
        grouped: dict[str, list[Run]] = {}
        for run in self.runs:
            if run.method == method:
                grouped.setdefault(run.group, []).append(run)
        return grouped

    @cached_property
    def _by_id(self) -> dict[str, Run]:
        return {run.id: run for run in self.runs}


def architecture_axis() -> Axis:
    """The axis `architectures` other than [mlp] adds where `axes` does not list it."""
    return Axis(ARCHITECTURE, "architectures", "arch", "architecture", False, DEFAULT_FAMILY)


def read_axes(config: dict[str, Any]) -> tuple[Axis, ...]:
    axes = tuple(
        Axis(
            name=entry["name"],
            values_key=entry["values"],
            tag=entry["tag"],
            label=entry.get("label", entry["name"]),
            baselines=entry.get("baselines", False),
            omit=entry.get("omit"),
        )
        for entry in config["axes"]
    )
    names = [axis.name for axis in axes]
    if ARCHITECTURE not in names and config.get("architectures", [DEFAULT_FAMILY]) != [
        DEFAULT_FAMILY
    ]:
        axes += (architecture_axis(),)
        names.append(ARCHITECTURE)
    for required in REQUIRED_AXES:
        if required not in names:
            raise ConfigError(
                f"config key 'axes' lacks the axis {required!r}: keep the entries "
                f"{', '.join(REQUIRED_AXES)} (the study compares depths of a latent size over seeds)"
            )
    for field in ("name", "tag", "values_key"):
        seen = [getattr(axis, field) for axis in axes]
        duplicates = sorted({value for value in seen if seen.count(value) > 1})
        if duplicates:
            raise ConfigError(
                f"config key 'axes' repeats the {field.replace('_key', '')} "
                f"{', '.join(map(repr, duplicates))}: give each axis its own"
            )
    for axis in axes:
        values = config.get(axis.values_key)
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"config key {axis.values_key!r} (the values of axis {axis.name!r}) must be a "
                "non-empty list: add it to config.yaml and the schema"
            )
        if len(set(map(_format_value, values))) != len(values):
            raise ConfigError(f"config key {axis.values_key!r} repeats a value: list each once")
        for value in values:
            if not _ID_VALUE.match(_format_value(value)):
                raise ConfigError(
                    f"config key {axis.values_key!r} holds {value!r}, which cannot be part of a "
                    "file name: use letters, digits, '.', '+' or '-'"
                )
    return axes


def build_grid(
    config: dict[str, Any],
    baselines: dict[str, Any],
    image_shape: tuple[int, int, int] = MNIST_SHAPE,
) -> Grid:
    """Every run of the study: one model per combination of the axes' values, in grid order,
    then for each baseline in `config["baselines"]` one run per combination of its axes.

    `baselines` is the registry (name -> object with a `seeded` attribute); `image_shape` the
    data's (height, width, channels).
    """
    axes = read_axes(config)
    root = study_root(config)
    unknown = [name for name in config["baselines"] if name not in baselines]
    if unknown:
        raise ConfigError(
            f"config key 'baselines' names {', '.join(map(repr, unknown))}, not a known "
            f"baseline: use some of {', '.join(baselines)}"
        )
    runs = [
        _make_run(AUTOENCODER, list(zip(axes, values)), prefix="", root=root)
        for values in itertools.product(*(config[axis.values_key] for axis in axes))
    ]
    for method in config["baselines"]:
        used = [
            axis
            for axis in axes
            if axis.baselines and (axis.name != REPLICATE or baselines[method].seeded)
        ]
        runs += [
            _make_run(method, list(zip(used, values)), prefix=f"{method}_", root=root)
            for values in itertools.product(*(config[axis.values_key] for axis in used))
        ]
    first_of: dict[str, str] = {}  # what a training depends on -> the first run doing it
    trained_as = {}
    for run in runs:
        if run.is_model:
            hparams = _checked_training_hparams(run, config, image_shape)
            training = {k: v for k, v in hparams.items() if k not in NAMING_AXES}
            trained_as[run.id] = first_of.setdefault(json.dumps(training, sort_keys=True), run.id)
    return Grid(
        axes=axes,
        runs=tuple(runs),
        baselines=tuple(config["baselines"]),
        root=root,
        trained_as=trained_as,
    )


def _make_run(method: str, parts: list[tuple[Axis, Any]], prefix: str, root: str) -> Run:
    used = tuple(axis for axis, _ in parts)
    values = {axis.name: value for axis, value in parts}
    return Run(
        method=method,
        values=tuple(values.items()),
        id=prefix + _run_id(parts) if parts else method,
        group=prefix + group_id(used, values) if set(values) - {REPLICATE} else method,
        root=root,
    )


def sort_order(axes: list[str]) -> list[str]:
    """The conditions (axes other than depth and seed) first, then depth, then seed."""
    return [a for a in axes if a not in (COMPARED, REPLICATE)] + [COMPARED, REPLICATE]


def setting_label(
    record: dict, axes: list[str], labels: dict[str, str], omit: dict | None = None
) -> str:
    """How figures name a run's setting (its values but the seed), e.g. "depth 2, latent size 2";
    an axis at its `omit` value (the article arm, the fixed regime) is left out, as in ids."""
    omit = omit or {}
    keys = [
        a
        for a in axes
        if a != REPLICATE
        and record.get(a) is not None
        and (a not in omit or _format_value(record[a]) != _format_value(omit[a]))
    ]
    return ", ".join(f"{labels[a]} {record[a]}" for a in keys)


def encoder_widths(sizes: list[int], depth: int) -> list[int]:
    """Widths of a depth-`depth` encoder: the first `depth` configured sizes."""
    return list(sizes[:depth])


def parameter_count(
    widths: list[int], latent_dim: int, shape: Shape = MNIST_SHAPE, architecture: str = MLP
) -> int:
    """Weights and biases of the model of this family, widths and latent size on images of
    `shape` (the family's own count, aedepth.families)."""
    return FAMILIES[architecture].parameters(widths, latent_dim, tuple(shape))


def matched_widths(
    taper: list[int], budget: int, count: Callable[[list[float]], float]
) -> list[int]:
    """Widths of the shape of `taper` (each scaled by one factor, rounded) whose parameter
    count (`count(widths)`) is the closest to `budget`: the count grows monotonically with
    the factor, so bisect it, round, then nudge the first width to the nearest count."""
    low, high = 1e-6, 1.0
    while count([max(1, round(high * w)) for w in taper]) < budget:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        real = count([middle * w for w in taper])  # real-valued
        low, high = (middle, high) if real < budget else (low, middle)
    widths = [max(1, round(high * w)) for w in taper]

    def miss(first: int) -> int:
        return abs(count([first, *widths[1:]]) - budget)

    first = widths[0]
    while first > 1 and miss(first - 1) < miss(first):
        first -= 1
    while miss(first + 1) < miss(first):
        first += 1
    return [first, *widths[1:]]


def parameter_budget(
    config: dict[str, Any], latent_dim: int, shape: Shape = MNIST_SHAPE, architecture: str = MLP
) -> int:
    """The count the matched_params arm matches: `param_budget`, or with 0 that of the
    family's model with every configured width (the article's deepest, on MNIST
    784-500-300-100-2)."""
    family = FAMILIES[architecture]
    return config.get("param_budget") or family.parameters(
        config[family.widths_key], latent_dim, tuple(shape)
    )


def model_widths(
    config: dict[str, Any],
    depth: int,
    latent_dim: int,
    arm: str,
    shape: Shape = MNIST_SHAPE,
    architecture: str = MLP,
) -> list[int]:
    """A model's widths in its arm: `article`, the first `depth` of its family's widths
    (`hidden_sizes`, `conv_channels`); `matched_params`, those widths scaled to the parameter
    budget (the same taper)."""
    family = FAMILIES[architecture]
    widths = encoder_widths(config[family.widths_key], depth)
    if arm == ARTICLE:
        return widths
    if arm == MATCHED:
        budget = parameter_budget(config, latent_dim, shape, architecture)
        return matched_widths(
            widths, budget, lambda scaled: family.parameters(scaled, latent_dim, tuple(shape))
        )
    raise ConfigError(f"config key 'arms' holds {arm!r}: use {ARTICLE} or {MATCHED}")


def training_hparams(
    run: Run, config: dict[str, Any], image_shape: tuple[int, int, int] = MNIST_SHAPE
) -> dict[str, Any]:
    """Exactly what one training job depends on: the shared settings, those of its training
    regime (`training_regimes`), the run's axis values (which override a setting of the same
    name) and its own widths and parameter count, not the whole list."""
    values = dict(run.values)
    regime = config.get("training_regimes", {}).get(values.get(REGIME), {})
    hparams = {key: config[key] for key in TRAINING_SETTINGS} | regime | values
    # absent at their defaults (MNIST's shape, the MLP): those hparams stay as they were
    if tuple(image_shape) != MNIST_SHAPE:
        hparams["image_shape"] = list(image_shape)
    if hparams.get(ARCHITECTURE) == DEFAULT_FAMILY:
        del hparams[ARCHITECTURE]
    family = family_of(hparams)
    hparams["widths"] = model_widths(
        config, run[COMPARED], run["latent_dim"], values.get(ARM, ARTICLE), image_shape, family.name
    )
    hparams["params"] = family.parameters(hparams["widths"], run["latent_dim"], tuple(image_shape))
    return hparams


def model_shape(hparams: dict[str, Any]) -> Shape:
    """The (height, width, channels) of the images the model whose hyperparameters these
    are takes: its `image_shape`, MNIST's without one."""
    return tuple(hparams.get("image_shape", MNIST_SHAPE))


def input_size(hparams: dict[str, Any]) -> int:
    """Values in one image of the model whose hyperparameters these are (its input size):
    height x width x channels of its `image_shape`, MNIST's 784 without one."""
    return math.prod(model_shape(hparams))


def copied_hparams(own: dict[str, Any], trained: dict[str, Any], trained_as: str) -> dict[str, Any]:
    """hparams.json of a model run whose model `trained_as` trained: its own hyperparameters
    (its axis values, e.g. arm: matched_params), then how that training ran (device, threads,
    path, ...: the keys of that run's hparams.json it lacks), then `trained_as`."""
    return own | {k: v for k, v in trained.items() if k not in own} | {"trained_as": trained_as}


def _checked_training_hparams(
    run: Run, config: dict[str, Any], image_shape: tuple[int, int, int]
) -> dict[str, Any]:
    """training_hparams(run, config), refused in one line where its regime is unknown or
    stops early without a validation split."""
    values = dict(run.values)
    if REGIME in values and values[REGIME] not in config.get("training_regimes", {}):
        raise ConfigError(
            f"config key 'trainings' holds {values[REGIME]!r}, not a key of "
            f"'training_regimes': use some of {', '.join(config.get('training_regimes', {}))}"
        )
    hparams = training_hparams(run, config, image_shape)
    if hparams["early_stopping_patience"] > 0 and hparams["validation_fraction"] == 0:
        raise ConfigError(
            f"training regime {values.get(REGIME)!r} sets early_stopping_patience > 0 without "
            "a validation split: give it validation_fraction above 0, e.g. 0.1"
        )
    return hparams


def baseline_hparams(run: Run) -> dict[str, Any]:
    return {"method": run.method, **dict(run.values)}
