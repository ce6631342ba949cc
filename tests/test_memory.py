"""A training that cannot fit in memory is refused when the workflow is read, in one line naming
the key to change and the estimate (aedepth.memory); each training job asks for its estimate.

Measured against real jobs (docs/configuration.md, "Memory"): the estimate was 1.12-1.25 times
the peak (VmHWM) of five trainings, each weighed by another part (the process, the model's
state, a training batch, a conv family's feature maps, the data with a validation split). Not
asserted here: the process's own size depends on the torch build.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import yaml
from conftest import REPO, copy_workflow, snakemake

from aedepth.config import (
    ConfigError,
    coerce_cli_lists,
    data_sizes,
    image_shape,
    load_schema,
    validate_config,
)
from aedepth.grid import build_grid, training_hparams
from aedepth.imports import package_modules
from aedepth.memory import (
    GB,
    MB,
    check_training_memory,
    memory_limit,
    resource_mb,
    training_memory,
)

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())
MACHINE = (24 * GB, "this machine's 24.0 GB")  # a limit as memory_limit gives it


def study(**changes) -> tuple[dict, dict[str, dict], tuple[int, int]]:
    """(config, {run id: hparams} of every training, (training, test) images) of the study
    with these changes to the shipped config, validated as the workflow does."""
    config = coerce_cli_lists(copy.deepcopy(DEFAULTS) | changes)
    validate_config(config, SCHEMA)
    shape = image_shape(config)
    grid = build_grid(config | {"baselines": []}, {}, shape)
    trainings = {run.id: training_hparams(run, config, shape) for run in grid.trained}
    return config, trainings, data_sizes(config)


def refusal(config, trainings, sizes, limit=MACHINE) -> str:
    with pytest.raises(ConfigError) as caught:
        check_training_memory(config, trainings, sizes, limit)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_huge_mlp_width_is_refused_naming_hidden_sizes():
    # 1.57e11 parameters: 20 bytes each (weights, gradients, Adam's moments, a copy)
    message = refusal(*study(source="sample", depths=[1], hidden_sizes=[100_000_000]))
    assert message.startswith(
        "config key 'hidden_sizes' = [100000000]: training depth1_dim2_seed0 would need about "
    )
    assert "weights, gradients and Adam's state 3,148.0" in message
    assert message.endswith("more than this machine's 24.0 GB: use smaller hidden_sizes")


def test_a_huge_conv_width_is_refused_naming_conv_channels():
    config, trainings, sizes = study(
        source="sample", depths=[1], architectures=["conv"], conv_channels=[100_000_000]
    )
    message = refusal(config, trainings, sizes)
    assert message.startswith(
        "config key 'conv_channels' = [100000000]: training depth1_dim2_seed0_archconv "
    )
    # an evaluation pass of the 1,000 test images holds two 14 x 14 x 1e8 feature maps each
    assert "activations 156,800.0" in message
    assert message.endswith("use smaller conv_channels")


@pytest.fixture
def huge_images(tmp_path):
    """An .npz of 2000 x 2000 images (zeros, compressed: 34 kB on disk)."""
    path = tmp_path / "huge.npz"
    labels = np.arange(12) % 2
    images = np.zeros((12, 2000, 2000), dtype=np.uint8)
    np.savez_compressed(path, x_train=images, y_train=labels, x_test=images, y_test=labels)
    return str(path)


def test_huge_images_are_refused_naming_the_source(huge_images):
    config, trainings, sizes = study(source=huge_images, dataset="huge", depths=[1])
    message = refusal(config, trainings, sizes)
    assert message.startswith(f"config key 'source' = {huge_images!r}: training depth1_dim2_seed0")
    # 4e6 pixels x 500 units in and out: 4.0e9 parameters, 80 GB of state
    assert "weights, gradients and Adam's state 80.1" in message
    assert message.endswith("use smaller images (or smaller hidden_sizes)")


def test_a_batch_too_large_is_refused_naming_batch_size():
    config, trainings, sizes = study(
        source="sample", depths=[1], hidden_sizes=[5000], batch_size=4000
    )
    estimate = training_memory(trainings["depth1_dim2_seed0"], *sizes)
    one = training_memory(trainings["depth1_dim2_seed0"] | {"batch_size": 1}, *sizes)
    limit = ((estimate.total + one.total) // 2, "a limit between them")
    message = refusal(config, trainings, sizes, limit)
    assert message.startswith("config key 'batch_size' = 4000: training depth1_dim2_seed0 ")
    assert message.endswith("more than a limit between them: use a smaller batch_size")


def test_too_many_images_are_refused_naming_the_source():
    config, trainings, _ = study(source="sample", depths=[1])
    # 20 million training images of 784 bytes, held twice (the fingerprint's copy): 33 GB
    message = refusal(config, trainings, (20_000_000, 1_000_000))
    assert message.startswith("config key 'source' = 'sample': ")
    assert message.endswith("use fewer or smaller images")


def test_a_limit_below_the_process_says_to_raise_it():
    message = refusal(*study(source="sample"), limit=memory_limit(500, None))
    assert message.startswith("training depth1_dim2_seed0 would need about 1.0 GB of memory")
    assert message.endswith(
        "more than the 500 MB of resource train:mem_mb: raise it (a training job takes "
        "0.9 GB for Python and torch alone)"
    )


def test_the_default_study_fits_and_its_estimate_is_the_measured_job_and_a_margin():
    config, trainings, sizes = study(source="sample")
    check_training_memory(config, trainings, sizes, MACHINE)
    # the sample's default depth-3 job peaked at 853 MiB (VmHWM) on 2026-12-08
    deepest = training_memory(trainings["depth3_dim2_seed0"], *sizes)
    assert 853 * 2**20 < deepest.total < 1.25 * 853 * 2**20
    assert deepest.state == 20 * trainings["depth3_dim2_seed0"]["params"]


def test_on_a_gpu_the_host_holds_the_process_and_the_data():
    _, trainings, sizes = study(source="sample", depths=[1], hidden_sizes=[100_000_000])
    estimate = training_memory(trainings["depth1_dim2_seed0"], *sizes, on_gpu=True)
    assert estimate.total < 1 * GB


def test_the_limit_is_the_users_mem_mb_then_the_total_then_the_machine():
    assert memory_limit(3000, 8000) == (3000 * MB, "the 3000 MB of resource train:mem_mb")
    assert memory_limit(None, 8000) == (8000 * MB, "the 8000 MB of --resources mem_mb")
    assert memory_limit(None, None)[1].startswith("this machine's ")
    assert resource_mb(None) is None and resource_mb("threads") is None
    assert resource_mb(2500) == 2500


def test_no_job_imports_the_estimate_so_a_new_one_reruns_nothing():
    for script in (REPO / "workflow" / "scripts").glob("*.py"):
        assert "memory.py" not in {path.name for path in package_modules(script)}, script


@pytest.mark.slow
def test_snakemake_refuses_at_parse_time_and_asks_for_each_estimate(tmp_path):
    """The real command line: a dry run refuses the huge model in one line; otherwise each
    training job's mem_mb is its estimate, and a user's train:mem_mb is the cap."""
    workdir = copy_workflow(tmp_path / "study")
    refused = snakemake(
        workdir, "-n", "--config", "source=sample", "depths=[1]", "hidden_sizes=[100000000]",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.startswith("aedepth:")]
    assert len(lines) == 1 and "config key 'hidden_sizes' = [100000000]" in lines[0]
    plan = snakemake(workdir, "-n", "--config", "source=sample", "depths=[1,3]", "seeds=[0]")
    asked = dict(
        re.findall(
            r"wildcards: run=(\S+)\n(?:\s+priority: .*\n)?\s+resources: .*?mem_mb=(\d+)",
            plan.stdout + plan.stderr,
        )
    )
    config, trainings, sizes = study(source="sample", depths=[1, 3], seeds=[0])
    assert asked == {
        run: str(training_memory(hparams, *sizes).mem_mb) for run, hparams in trainings.items()
    }
    capped = snakemake(
        workdir, "-n", "--config", "source=sample", "--set-resources", "train:mem_mb=500",
        check=False,
    )  # fmt: skip
    assert capped.returncode == 1
    assert "more than the 500 MB of resource train:mem_mb: raise it" in capped.stderr
