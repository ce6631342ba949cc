"""Unit tests of aedepth.config: every bad value gets one exact line naming the key and what it accepts.

The same mistakes made through the real `snakemake` command line are in test_faults.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import yaml
from layouts import ALL_KEYS
from conftest import REPO
from idx_server import write_fake_mnist

from aedepth.config import (
    ConfigError,
    coerce_cli_lists,
    data_settings,
    idx_paths,
    load_schema,
    validate_config,
)
from aedepth.data import IDX_NAMES, idx_size, sample_split_sizes

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())
MNIST_MD5 = DEFAULTS["datasets"]["mnist"]["checksums"]
DEPTHS_ALLOWED = "use a non-empty list of distinct integers >= 1, e.g. [1, 2, 3]"
SEEDS_ALLOWED = "use a non-empty list of distinct integers >= 0, e.g. [0, 1, 2]"
MIRRORS_ALLOWED = (
    "use [] (the dataset's own mirrors) or a list of http(s) URLs, "
    "each the folder holding the *.gz IDX files"
)


def config_with(**changes):
    config = copy.deepcopy(DEFAULTS)
    config.update(changes)
    return coerce_cli_lists(config)


def error_of(config) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(config, SCHEMA)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_shipped_config_is_valid():
    validate_config(coerce_cli_lists(DEFAULTS), SCHEMA)


def test_every_schema_property_names_what_it_accepts():
    # Error messages quote the description as the allowed values.
    assert set(SCHEMA["properties"]) == set(DEFAULTS) == set(SCHEMA["required"])
    for key, spec in SCHEMA["properties"].items():
        assert spec.get("description"), key


# (changes to the shipped config, the exact one-line message)
BAD_CONFIGS = {
    "conv channels short": (
        {"architectures": ["mlp", "conv"], "conv_channels": [16, 32]},
        "config key 'conv_channels' has 2 widths but 'depths' asks for depth 3: give at least "
        "3 widths or drop that depth",
    ),
    "unknown family": (
        {"architectures": ["cnn"]},
        "config key 'architectures[0]' = 'cnn' is invalid ('cnn' is not one of ['mlp', "
        "'conv']): use a non-empty list of model families: mlp, conv",
    ),
    "typo epoch": (
        {"epoch": 5},
        f"unknown config key(s) 'epoch': allowed keys are {ALL_KEYS}",
    ),
    "two typos": (
        {"seed": [1], "lr": 0.1},
        f"unknown config key(s) 'lr', 'seed': allowed keys are {ALL_KEYS}",
    ),
    "depth 0": (
        {"depths": [0]},
        "config key 'depths[0]' = 0 is invalid (0 is less than the minimum of 1): "
        + DEPTHS_ALLOWED,
    ),
    "depth negative": (
        {"depths": [1, -2]},
        "config key 'depths[1]' = -2 is invalid (-2 is less than the minimum of 1): "
        + DEPTHS_ALLOWED,
    ),
    "depths empty": (
        {"depths": []},
        "config key 'depths' = [] is invalid ([] should be non-empty): " + DEPTHS_ALLOWED,
    ),
    "depths duplicated": (
        {"depths": [1, 2, 1]},
        "config key 'depths' = [1, 2, 1] is invalid ([1, 2, 1] has non-unique elements): "
        + DEPTHS_ALLOWED,
    ),
    "depths not a list": (
        {"depths": 2},
        "config key 'depths' = 2 is invalid (2 is not of type 'array'): " + DEPTHS_ALLOWED,
    ),
    "depth a float": (
        {"depths": [1.0, 2]},
        "config key 'depths[0]' = 1.0 is invalid (1.0 is not of type 'integer'): " + DEPTHS_ALLOWED,
    ),
    "hidden_sizes too short": (
        {"hidden_sizes": [500, 300]},
        "config key 'hidden_sizes' has 2 widths but 'depths' asks for depth 3: "
        "give at least 3 widths or drop that depth",
    ),
    "hidden size 0": (
        {"hidden_sizes": [500, 0, 100]},
        "config key 'hidden_sizes[1]' = 0 is invalid (0 is less than the minimum of 1): "
        "use a list of layer widths >= 1, at least as long as the largest depth",
    ),
    "latent size 0": (
        {"latent_dims": [2, 0]},
        "config key 'latent_dims[1]' = 0 is invalid (0 is less than the minimum of 1): "
        "use a non-empty list of distinct integers >= 1, e.g. [2] or [2, 8]",
    ),
    "early stopping negative": (
        {"early_stopping_patience": -1},
        "config key 'early_stopping_patience' = -1 is invalid (-1 is less than the minimum of 0): "
        "use an integer >= 0 (0: train all epochs)",
    ),
    "early stopping without a validation split": (
        {"early_stopping_patience": 5},
        "config key 'early_stopping_patience' = 5 needs a validation split (early stopping "
        "never looks at the test split): set validation_fraction above 0, e.g. 0.1, or "
        "early_stopping_patience: 0",
    ),
    "validation fraction 1": (
        {"validation_fraction": 1},
        "config key 'validation_fraction' = 1 is invalid (1 is greater than or equal to the "
        "maximum of 1): use a fraction >= 0 and < 1 (0: no validation split)",
    ),
    "epochs 0": (
        {"epochs": 0},
        "config key 'epochs' = 0 is invalid (0 is less than the minimum of 1): use an integer >= 1",
    ),
    "epochs negative": (
        {"epochs": -3},
        "config key 'epochs' = -3 is invalid (-3 is less than the minimum of 1): "
        "use an integer >= 1",
    ),
    "epochs a float": (
        {"epochs": 2.0},
        "config key 'epochs' = 2.0 is invalid (2.0 is not of type 'integer'): use an integer >= 1",
    ),
    "epochs a bool": (
        {"epochs": True},
        "config key 'epochs' = True is invalid (True is not of type 'integer'): "
        "use an integer >= 1",
    ),
    "batch_size 0": (
        {"batch_size": 0},
        "config key 'batch_size' = 0 is invalid (0 is less than the minimum of 1): "
        "use an integer >= 1",
    ),
    "learning_rate 0": (
        {"learning_rate": 0},
        "config key 'learning_rate' = 0 is invalid "
        "(0 is less than or equal to the minimum of 0): use a number > 0",
    ),
    "learning_rate negative": (
        {"learning_rate": -0.001},
        "config key 'learning_rate' = -0.001 is invalid "
        "(-0.001 is less than or equal to the minimum of 0): use a number > 0",
    ),
    "learning_rate nan": (
        {"learning_rate": math.nan},
        "config key 'learning_rate' = nan is not a finite number: use a number > 0",
    ),
    "learning_rate inf": (
        {"learning_rate": math.inf},
        "config key 'learning_rate' = inf is not a finite number: use a number > 0",
    ),
    "learning_rate as YAML text 1e-3": (
        {"learning_rate": "1e-3"},
        "config key 'learning_rate' = '1e-3' is invalid ('1e-3' is not of type 'number'; "
        "YAML reads 1e-3 as text, write 1.0e-3): use a number > 0",
    ),
    "batch_size as YAML text 1e3": (
        {"batch_size": "1e3"},
        "config key 'batch_size' = '1e3' is invalid ('1e3' is not of type 'integer'; "
        "YAML reads 1e3 as text, write 1000): use an integer >= 1",
    ),
    "sample_test_fraction nan": (
        {"sample_test_fraction": math.nan},
        "config key 'sample_test_fraction' = nan is not a finite number: "
        "use a fraction strictly between 0 and 1",
    ),
    "source missing folder": (
        {"source": "/no/such/folder"},
        "config key 'source' = '/no/such/folder' is neither 'download', 'sample', an existing "
        "folder nor an .npz file: give a folder with the four IDX files, an image folder "
        "(train/<class>/, test/<class>/) or an .npz",
    ),
    "source empty": (
        {"source": ""},
        "config key 'source' = '' is invalid ('' should be non-empty): use 'download', 'sample', "
        "or the path of a folder holding the four IDX files, of an image folder "
        "(train/<class>/, test/<class>/) or of an .npz",
    ),
    "mirror ftp": (
        {"mirrors": ["ftp://example.org/mnist/"]},
        "config key 'mirrors[0]' = 'ftp://example.org/mnist/' is invalid "
        "('ftp://example.org/mnist/' does not match '^https?://\\\\S+$'): " + MIRRORS_ALLOWED,
    ),
    "mirror not a URL": (
        {"mirrors": ["https://ok.example/", "example.org/mnist"]},
        "config key 'mirrors[1]' = 'example.org/mnist' is invalid "
        "('example.org/mnist' does not match '^https?://\\\\S+$'): " + MIRRORS_ALLOWED,
    ),
    "seed text": (
        {"seeds": ["a"]},
        "config key 'seeds[0]' = 'a' is invalid ('a' is not of type 'integer'): " + SEEDS_ALLOWED,
    ),
    "seed float": (
        {"seeds": [0, 1.5]},
        "config key 'seeds[1]' = 1.5 is invalid (1.5 is not of type 'integer'): " + SEEDS_ALLOWED,
    ),
    "seed negative": (
        {"seeds": [-1]},
        "config key 'seeds[0]' = -1 is invalid (-1 is less than the minimum of 0): "
        + SEEDS_ALLOWED,
    ),
    "seeds duplicated": (
        {"seeds": [0, 0]},
        "config key 'seeds' = [0, 0] is invalid ([0, 0] has non-unique elements): " + SEEDS_ALLOWED,
    ),
    "device unknown": (
        {"device": "tpu"},
        "config key 'device' = 'tpu' is invalid ('tpu' is not one of ['auto', 'cpu', 'cuda']): "
        "use one of auto, cpu, cuda",
    ),
    "checksum not md5": (
        {"checksums": MNIST_MD5 | {"t10k-labels-idx1-ubyte": "abc"}},
        "config key 'checksums.t10k-labels-idx1-ubyte' = 'abc' is invalid "
        "('abc' does not match '^[0-9a-fA-F]{32}$'): "
        "use {} (the dataset's own checksums) or the MD5 (32 hex digits) of each of the four "
        "decompressed IDX files",
    ),
}


@pytest.mark.parametrize(("changes", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_gets_one_exact_line(changes, message):
    assert error_of(config_with(**changes)) == message


SPLIT_NEEDS = "(the metrics need 1 training and 11 test images): use 0.003 to 0.998"
# Values the schema accepts and the data cannot support: each failed after training before.
TOO_LARGE_FOR_THE_DATA = {
    "knn over the sample's training split": (
        {"source": "sample", "knn_neighbors": 4001},
        "config key 'knn_neighbors' = 4001 is larger than the 4000 training images of "
        "source sample: use at most 4000",
    ),
    "knn over a download's training split": (
        {"knn_neighbors": 60001},
        "config key 'knn_neighbors' = 60001 is larger than the 60000 training images of "
        "source download: use at most 60000",
    ),
    "k-means over the test split": (
        {"source": "sample", "kmeans_clusters": 1001},
        "config key 'kmeans_clusters' = 1001 is larger than the 1000 test images of "
        "source sample: use at most 1000",
    ),
    "trustworthiness neighbors over half the test split": (
        {"source": "sample", "trustworthiness_neighbors": 500},
        "config key 'trustworthiness_neighbors' = 500 is not under half the 1000 test images "
        "of source sample that trustworthiness scores: use at most 499",
    ),
    "trustworthiness samples not twice the neighbors": (
        {"trustworthiness_samples": 20, "trustworthiness_neighbors": 10},
        "config key 'trustworthiness_samples' = 20 is not more than twice "
        "trustworthiness_neighbors = 10: use at least 21, or lower trustworthiness_neighbors",
    ),
    "latent size of the whole image": (
        {"latent_dims": [2, 784]},
        "config key 'latent_dims[1]' = 784 is not smaller than the 784 pixel values of an image: "
        "use at most 783",
    ),
    "seed 2**64": (
        {"seeds": [0, 2**64]},
        "config key 'seeds[1]' = 18446744073709551616 is too large for scikit-learn's "
        "random_state: use at most 4294967295",
    ),
    "seed 2**32": (
        {"seeds": [2**32]},
        "config key 'seeds[0]' = 4294967296 is too large for scikit-learn's random_state: "
        "use at most 4294967295",
    ),
    "sample test split empty": (
        {"source": "sample", "sample_test_fraction": 0.001},
        "config key 'sample_test_fraction' = 0.001 leaves 0 of the 5000 sample images in the "
        "test split " + SPLIT_NEEDS,
    ),
    "sample test split one per class": (
        {"source": "sample", "sample_test_fraction": 0.002},
        "config key 'sample_test_fraction' = 0.002 leaves 10 of the 5000 sample images in the "
        "test split " + SPLIT_NEEDS,
    ),
    "sample training split empty": (
        {"source": "sample", "sample_test_fraction": 0.9995},
        "config key 'sample_test_fraction' = 0.9995 leaves 0 of the 5000 sample images in the "
        "training split " + SPLIT_NEEDS,
    ),
    "braces in a mirror": (
        {"mirrors": ["http://127.0.0.1:8000/{name}/"]},
        "config key 'mirrors[0]' = 'http://127.0.0.1:8000/{name}/' holds { or }, which "
        "Snakemake reads as a wildcard: write { as %7B and } as %7D",
    ),
    "braces in a dataset's mirror": (
        {
            "datasets": DEFAULTS["datasets"]
            | {"mnist": DEFAULTS["datasets"]["mnist"] | {"mirrors": ["https://x.org/}"]}}
        },
        "config key 'datasets.mnist.mirrors[0]' = 'https://x.org/}' holds { or }, which "
        "Snakemake reads as a wildcard: write { as %7B and } as %7D",
    ),
    "braces in a class name": (
        {
            "datasets": DEFAULTS["datasets"]
            | {"mnist": DEFAULTS["datasets"]["mnist"] | {"classes": ["{0}", *"123456789"]}}
        },
        "config key 'datasets.mnist.classes[0]' = '{0}' holds { or }, which Snakemake reads "
        "as a wildcard: remove them",
    ),
    "credentials in a mirror": (
        {"mirrors": ["https://alice:s3cret@example.org/mnist/"]},
        "config key 'mirrors[0]' = 'https://***@example.org/mnist/' holds a user name or "
        "password (before the @), which downloads cannot use and logs would show: use a mirror "
        "that needs no login, e.g. a local copy served with `python -m http.server`",
    ),
    "credentials in a dataset's mirror, even if otherwise invalid": (
        {
            "datasets": DEFAULTS["datasets"]
            | {"mnist": DEFAULTS["datasets"]["mnist"] | {"mirrors": ["ftp://bob@x.org/ a"]}}
        },
        "config key 'datasets.mnist.mirrors[0]' = 'ftp://***@x.org/ a' holds a user name or "
        "password (before the @), which downloads cannot use and logs would show: use a mirror "
        "that needs no login, e.g. a local copy served with `python -m http.server`",
    ),
    "checksums lacking a file": (
        {"checksums": {k: v for k, v in MNIST_MD5.items() if k != "t10k-labels-idx1-ubyte"}},
        "config key 'checksums' lacks t10k-labels-idx1-ubyte: give the MD5 of exactly "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte",
    ),
    "checksums naming an unknown file": (
        {"checksums": MNIST_MD5 | {"extra": "0" * 32}},
        "config key 'checksums' has extra: give the MD5 of exactly train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
    ),
}


@pytest.mark.parametrize(
    ("changes", "message"), TOO_LARGE_FOR_THE_DATA.values(), ids=TOO_LARGE_FOR_THE_DATA.keys()
)
def test_values_the_data_cannot_support_get_one_exact_line(changes, message):
    assert error_of(config_with(**changes)) == message


# The primary question: a metric, and a difference in its units that two models could show
# (aedepth.metrics.RANGES); each was accepted before and made every verdict "no meaningful
# difference" (a δ past the range) after the whole study had trained.
METRIC_NAMES = (
    "knn_accuracy, silhouette, davies_bouldin, calinski_harabasz, kmeans_ari, kmeans_nmi, "
    "trustworthiness, reconstruction_bce, reconstruction_mse"
)
BAD_QUESTIONS = {
    "metric unknown": (
        {"primary_metric": "accuracy"},
        f"config key 'primary_metric' = 'accuracy' is not a metric: use one of {METRIC_NAMES}",
    ),
    "difference far past the range": (
        {"smallest_difference": 1e9},
        "config key 'smallest_difference' = 1000000000.0 is not smaller than knn_accuracy's "
        "range [0, 1]: use a difference that matters in its units, e.g. 0.01",
    ),
    "difference of the whole range": (
        {"smallest_difference": 1},
        "config key 'smallest_difference' = 1 is not smaller than knn_accuracy's range [0, 1]: "
        "use a difference that matters in its units, e.g. 0.01",
    ),
    "difference of a range from -0.5": (
        {"primary_metric": "kmeans_ari", "smallest_difference": 1.5},
        "config key 'smallest_difference' = 1.5 is not smaller than kmeans_ari's range "
        "[-0.5, 1]: use a difference that matters in its units, e.g. 0.015",
    ),
    "difference past the clipped BCE": (
        {"primary_metric": "reconstruction_bce", "smallest_difference": 17},
        "config key 'smallest_difference' = 17 is not smaller than reconstruction_bce's range "
        "[0, 16.1181]: use a difference that matters in its units, e.g. 0.16",
    ),
    "difference 0": (
        {"smallest_difference": 0},
        "config key 'smallest_difference' = 0 is not above 0: use a difference that matters "
        "in knn_accuracy's units (its range is [0, 1]), e.g. 0.01",
    ),
    "difference below 0, unbounded metric": (
        {"primary_metric": "davies_bouldin", "smallest_difference": -0.1},
        "config key 'smallest_difference' = -0.1 is not above 0: use a difference that "
        "matters in davies_bouldin's units (its range is [0, inf])",
    ),
}


@pytest.mark.parametrize(("changes", "message"), BAD_QUESTIONS.values(), ids=BAD_QUESTIONS.keys())
def test_a_question_no_two_models_could_answer_gets_one_exact_line(changes, message):
    assert error_of(config_with(**changes)) == message


def test_differences_inside_the_metrics_range_are_accepted():
    for metric, delta in [
        ("silhouette", 1.99),  # range [-1, 1]
        ("kmeans_ari", 1.49),  # [-0.5, 1]
        ("davies_bouldin", 1e9),  # unbounded above: any difference above 0
        ("calinski_harabasz", 1e6),
        ("reconstruction_bce", 16.0),
    ]:
        validate_config(config_with(primary_metric=metric, smallest_difference=delta), SCHEMA)


def test_the_limits_themselves_are_accepted():
    sample = {"source": "sample", "trustworthiness_samples": 2000}
    validate_config(config_with(**sample, knn_neighbors=4000, kmeans_clusters=1000), SCHEMA)
    validate_config(config_with(**sample, trustworthiness_neighbors=499), SCHEMA)
    validate_config(config_with(trustworthiness_samples=21, trustworthiness_neighbors=10), SCHEMA)
    validate_config(config_with(latent_dims=[783], seeds=[2**32 - 1]), SCHEMA)
    for fraction in (0.003, 0.998):
        validate_config(config_with(source="sample", sample_test_fraction=fraction), SCHEMA)


def test_sample_split_sizes_match_load_sample():
    from aedepth.data import load_sample

    for fraction in (0.2, 0.003, 0.37):
        arrays = load_sample(test_fraction=fraction)
        assert sample_split_sizes(fraction) == (len(arrays["x_train"]), len(arrays["x_test"]))


def test_folder_sizes_are_read_from_the_idx_headers(tmp_path):
    write_fake_mnist(tmp_path, n_train=60, n_test=20)  # gzipped
    validate_config(config_with(source=str(tmp_path), kmeans_clusters=20), SCHEMA)
    assert error_of(config_with(source=str(tmp_path), kmeans_clusters=21)) == (
        f"config key 'kmeans_clusters' = 21 is larger than the 20 test images of "
        f"source '{tmp_path}': use at most 20"
    )
    assert error_of(config_with(source=str(tmp_path), knn_neighbors=61)) == (
        f"config key 'knn_neighbors' = 61 is larger than the 60 training images of "
        f"source '{tmp_path}': use at most 60"
    )


def test_folder_with_too_few_test_images(tmp_path):
    write_fake_mnist(tmp_path, n_train=60, n_test=5, gz=False)
    assert error_of(config_with(source=str(tmp_path))) == (
        f"config key 'source' = '{tmp_path}' holds 60 training and 5 test images: "
        "the metrics need at least 1 and 11; use a folder with more images"
    )


def test_folder_with_a_bad_header_is_left_to_the_job(tmp_path):
    write_fake_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\xff\xff\x08\x03")
    validate_config(config_with(source=str(tmp_path), kmeans_clusters=500), SCHEMA)


def test_braces_in_a_source_folder(tmp_path):
    folder = tmp_path / "src{x}"
    write_fake_mnist(folder)
    assert error_of(config_with(source=str(folder))) == (
        f"config key 'source' = '{folder}' holds {{ or }}, which Snakemake reads as a wildcard: "
        "use a path without braces (a symbolic link to the folder, say)"
    )


def test_idx_names_have_one_source():
    # config.yaml's checksums, idx_paths and the download sizes all follow aedepth.data.IDX_NAMES.
    for dataset in DEFAULTS["datasets"].values():
        assert tuple(dataset["checksums"]) == IDX_NAMES
    assert [idx_size(name) for name in IDX_NAMES] == [47_040_016, 60_008, 7_840_016, 10_008]
    assert "train-images-idx3-ubyte" not in (REPO / "workflow/rules/common.smk").read_text()
    assert "train-images-idx3-ubyte" not in str(SCHEMA)


def test_missing_key_is_named():
    config = config_with()
    del config["latent_dims"]
    assert error_of(config) == "config is missing 'latent_dims': add it (see config.yaml)"


def test_source_folder_without_idx_files(tmp_path):
    write_fake_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte").unlink()
    assert error_of(config_with(source=str(tmp_path))) == (
        f"config key 'source' = '{tmp_path}' lacks train-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (raw or .gz): put the four IDX files there, "
        "or use source: download or sample"
    )


def test_source_a_file_not_a_folder(tmp_path):
    path = tmp_path / "mnist.gz"
    path.write_bytes(b"")
    assert "is neither 'download', 'sample', an existing folder nor an .npz file" in error_of(
        config_with(source=str(path))
    )


@pytest.mark.parametrize("gz", [True, False])
def test_source_folder_with_raw_or_gz_files_is_valid(tmp_path, gz):
    write_fake_mnist(tmp_path, gz=gz)
    validate_config(config_with(source=str(tmp_path)), SCHEMA)
    suffix = ".gz" if gz else ""
    assert idx_paths(tmp_path) == [tmp_path / f"{name}{suffix}" for name in IDX_NAMES]


def test_good_variants_are_accepted():
    validate_config(
        config_with(
            source="sample",
            depths=[4, 1],
            hidden_sizes=[8, 8, 8, 8],
            seeds=[0, 7, 2**31],
            learning_rate=1,
            early_stopping_patience=3,
            validation_fraction=0.1,
            baselines=["pca", "random_projection"],
            device="cpu",
            mirrors=["http://127.0.0.1:8000/", "https://example.org/a/b/"],
        ),
        SCHEMA,
    )


def test_cli_list_items_are_parsed_back_to_numbers():
    # `snakemake --config depths=[1,2,4] seeds=[0,1]` delivers lists of strings.
    cli = {"depths": ["1", "2", "4"], "seeds": ["0", "1"], "hidden_sizes": ["8", "8", "8", "8"]}
    coerced = coerce_cli_lists(DEFAULTS | cli)
    assert coerced["depths"] == [1, 2, 4] and coerced["seeds"] == [0, 1]
    assert all(type(item) is int for item in coerced["depths"] + coerced["hidden_sizes"])
    validate_config(coerced, SCHEMA)
    # text that is not a number stays text (and is then rejected by the schema), URLs survive
    assert coerce_cli_lists({"seeds": ["a", "true", "1.5"]}) == {"seeds": ["a", "true", 1.5]}
    assert coerce_cli_lists({"mirrors": ["http://x/"]}) == {"mirrors": ["http://x/"]}
    # the original config is not modified
    assert cli["depths"] == ["1", "2", "4"]


@pytest.mark.parametrize("text", ["1e-3", "5E-4", "1e3", "2.5e2"])
def test_suggested_spelling_of_exponents_is_a_yaml_float(text):
    message = error_of(config_with(learning_rate=text))
    suggestion = message.split(" as text, write ")[1].split(")")[0]
    assert yaml.safe_load(f"x: {suggestion}")["x"] == float(text)


def test_dataset_settings_and_overrides():
    mnist = data_settings(config_with())
    assert mnist["mirrors"][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert mnist["checksums"]["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert mnist["classes"][3] == "3"
    fashion = data_settings(config_with(dataset="fashion-mnist"))
    assert fashion["checksums"]["t10k-labels-idx1-ubyte"] == "15d484375f8d13e6eb1aabb0c3f46965"
    assert fashion["classes"][9] == "Ankle boot"
    local = config_with(mirrors=["http://127.0.0.1:8000/"], checksums=MNIST_MD5 | {})
    assert data_settings(local)["mirrors"] == ["http://127.0.0.1:8000/"]
    validate_config(local, SCHEMA)


def test_unknown_dataset_is_named():
    assert error_of(config_with(dataset="cifar")) == (
        "config key 'dataset' = 'cifar' is not listed under 'datasets': "
        "use one of mnist, fashion-mnist"
    )
