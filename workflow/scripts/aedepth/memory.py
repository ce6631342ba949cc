"""How much memory one training job needs, estimated from its model and data before any job
runs, and the memory the jobs may have: a study whose training cannot fit is refused when
the workflow is read, and each training job asks the scheduler for its estimate (`mem_mb`).

Plain arithmetic, no torch: Snakemake reads it at parse time. Not imported by any job's
script, so a change here reruns nothing (a job's memory is a scheduling fact, never a param).

What a training job (workflow/scripts/train_model.py, aedepth.train) holds at its peak:

- the process: Python with torch imported and what Adam's first step imports (torch._dynamo,
  sympy), PROCESS_MIB, measured on the sample's default job;
- the data, uint8 as the job keeps it: every array of the prepared dataset, a transient copy
  of the training images (the checkpoint's fingerprint hashes each array's bytes) and, with a
  validation split, the fitted and held-out rows copied apart;
- the model's state, float32: weights, gradients and Adam's two moments (4 x parameters x
  4 bytes), and one copy more (the best weights kept for early stopping, the state written to
  the checkpoint);
- activations: one training batch's values at every layer (the input, each layer's output
  before and after its activation function, the logits), kept for the backward pass, and
  their gradients (TRAINING_COPIES), or one evaluation pass (EVAL_ROWS images, no
  gradients), whichever is larger;
- a margin: MARGIN times the data, state and activations.

Against five real trainings, each weighed by another part, the estimate was 1.12-1.25 times
the measured peak (docs/configuration.md, "Memory").

On a GPU the model's state and activations live in the GPU's memory: the estimate of the
host's memory then counts the process and the data only (the GPU's own is not checked).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from aedepth.families import CONV, conv_sizes, family_of
from aedepth.grid import ARM, MATCHED, model_shape
from aedepth.jobs import ConfigError

MIB = 2**20
MB = 10**6  # Snakemake's mem_mb counts these (Slurm's --mem MiB: a little more)
GB = 10**9
# the process: the sample's default training job (depth 3) peaked at 853 MiB (VmHWM), nearly
# all of it Python, torch, Adam's imports and Snakemake's script preamble (2026-12-08)
PROCESS_MIB = 900
FLOAT = 4  # bytes of a float32
STATE_COPIES = 5  # weights, gradients, Adam's two moments, one copy (checkpoint, best weights)
TRAINING_COPIES = 2  # each value kept for the backward pass, and its gradient
EVAL_ROWS = 1024  # aedepth.train.EVAL_CHUNK: rows of one evaluation pass
LABEL = 8  # bytes per label, at most (int64)
MARGIN = 1.25


@dataclass(frozen=True)
class Estimate:
    """A training job's peak memory in bytes, by part."""

    process: int
    data: int
    state: int
    training: int  # one training batch's activations
    evaluation: int  # one evaluation chunk's
    on_gpu: bool = False

    @property
    def parts(self) -> dict[str, int]:
        """The parts the host holds besides the process, by name."""
        if self.on_gpu:
            return {"data": self.data}
        activations = max(self.training, self.evaluation)
        return {"data": self.data, "state": self.state, "activations": activations}

    @property
    def total(self) -> int:
        return self.process + math.ceil(MARGIN * sum(self.parts.values()))

    @property
    def mem_mb(self) -> int:
        """The estimate in MB, as Snakemake's mem_mb counts them."""
        return math.ceil(self.total / MB)


def layer_outputs(hparams: dict) -> list[int]:
    """Values one image makes at each layer's output but the last (the output logits): the
    MLP's hidden layers, latent code and mirrored layers; the conv family's feature maps, the
    dense features into and out of the latent code, the code, and the mirrored maps."""
    widths, latent = hparams["widths"], hparams["latent_dim"]
    if family_of(hparams).name == CONV:
        height, width, _ = model_shape(hparams)
        sizes = conv_sizes(height, width, len(widths))[1:]
        maps = [c * h * w for c, (h, w) in zip(widths, sizes)]
        return [*maps, latent, maps[-1], *reversed(maps[:-1])]
    return [*widths, latent, *reversed(widths)]


def training_values(hparams: dict) -> int:
    """Values one image of a training batch keeps for the backward pass: the input, each
    layer's output before and after its activation function, the logits and, for the conv
    family, the image's channels-first and channels-last copies."""
    pixels = math.prod(model_shape(hparams))
    copies = 4 if family_of(hparams).name == CONV else 2
    return copies * pixels + 2 * sum(layer_outputs(hparams))


def evaluation_values(hparams: dict) -> int:
    """Values one image of an evaluation pass (no gradients) holds at once, at most: the
    input, the logits and the loss's temporaries, and two layers' outputs."""
    return 4 * math.prod(model_shape(hparams)) + 2 * max(layer_outputs(hparams))


def training_memory(hparams: dict, n_train: int, n_test: int, on_gpu: bool = False) -> Estimate:
    """The peak memory of the job training the model these hyperparameters describe on
    `n_train` training and `n_test` test images (see the module's docstring)."""
    pixels = math.prod(model_shape(hparams))
    fraction = hparams.get("validation_fraction", 0)
    copies = 2 if fraction > 0 else 1  # the fingerprint's copy; the split's
    evaluated = min(EVAL_ROWS, max(n_test, math.ceil(fraction * n_train)))
    return Estimate(
        process=PROCESS_MIB * MIB,
        data=(n_train + n_test) * (pixels + LABEL) + copies * n_train * pixels,
        state=STATE_COPIES * FLOAT * hparams["params"],
        training=min(hparams["batch_size"], n_train)
        * training_values(hparams)
        * FLOAT
        * TRAINING_COPIES,
        evaluation=evaluated * evaluation_values(hparams) * FLOAT,
        on_gpu=on_gpu,
    )


def machine_memory() -> int:
    """This machine's memory in bytes (MemTotal): a scheduling fact, never a param."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resource_mb(resource) -> int | None:
    """A mem_mb resource the user set (Snakemake's Resource, or a plain number) in MiB; None
    where it is not set or not a number."""
    value = getattr(resource, "value", resource)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def memory_limit(train_mem_mb: int | None, total_mem_mb: int | None) -> tuple[int, str]:
    """The memory one training job may have, in bytes, and how to name it: the training jobs'
    own mem_mb where the user set it (--set-resources train:mem_mb=..., or a profile's
    set-resources: Slurm's --mem), else --resources mem_mb=..., else this machine's."""
    if train_mem_mb is not None:
        return train_mem_mb * MB, f"the {train_mem_mb} MB of resource train:mem_mb"
    if total_mem_mb is not None:
        return total_mem_mb * MB, f"the {total_mem_mb} MB of --resources mem_mb"
    memory = machine_memory()
    return memory, f"this machine's {memory / GB:.1f} GB"


def check_training_memory(
    config: dict,
    trainings: dict[str, dict],
    sizes: tuple[int, int],
    limit: tuple[int, str],
    on_gpu: bool = False,
) -> None:
    """Refuse, in one line, the first of `trainings` ({run id: hparams}) whose estimated peak
    exceeds `limit` (memory_limit's), naming the key to change and the estimate in GB."""
    limit_bytes, limit_name = limit
    for run, hparams in trainings.items():
        estimate = training_memory(hparams, *sizes, on_gpu=on_gpu)
        if estimate.total <= limit_bytes:
            continue
        if 2 * estimate.process > estimate.total:  # the process weighs most: the limit is low
            raise ConfigError(
                f"training {run} would need about {estimate.total / GB:,.1f} GB of memory, "
                f"more than {limit_name}: raise it (a training job takes "
                f"{estimate.process / GB:.1f} GB for Python and torch alone)"
            )
        one_image = training_memory(hparams | {"batch_size": 1}, *sizes, on_gpu=on_gpu)
        key, fix = _culprit(config, hparams, estimate, one_image.total <= limit_bytes)
        parts = ", ".join(
            f"{_NAMES[name]} {size / GB:,.1f}" for name, size in estimate.parts.items()
        )
        raise ConfigError(
            f"config key {key}: training {run} would need about {estimate.total / GB:,.1f} GB "
            f"of memory ({parts} GB, and the process), more than {limit_name}: {fix}"
        )


_NAMES = {
    "data": "data",
    "state": "weights, gradients and Adam's state",
    "activations": "activations",
}


def _culprit(config: dict, hparams: dict, estimate: Estimate, smaller_batch_fits: bool):
    """The key at fault, shown with its value, and the advice: the data's source where the
    data weigh most; batch_size where a smaller batch fits; else the model's widths or its
    image size, whichever is the larger number (a wide layer, or an image of many pixels)."""
    parts = estimate.parts
    source = f"'source' = {config['source']!r}"
    if max(parts, key=parts.get) == "data":
        return source, "use fewer or smaller images"
    if smaller_batch_fits and estimate.training >= estimate.evaluation:
        return f"'batch_size' = {hparams['batch_size']}", "use a smaller batch_size"
    key = family_of(hparams).widths_key
    if max(hparams["widths"]) < math.prod(model_shape(hparams)):
        return source, f"use smaller images (or smaller {key})"
    if hparams.get(ARM) == MATCHED and config.get("param_budget"):
        return f"'param_budget' = {config['param_budget']}", "use a smaller parameter budget"
    return f"{key!r} = {config[key]}", f"use smaller {key}"
