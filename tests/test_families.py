"""Model families (aedepth.families): each one's counts are its built model's, the conv family
works on any image size, and the `architecture` axis leaves the MLP's runs as they were."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_config import config_with
from torch.utils.flop_counter import FlopCounterMode

from aedepth.families import CONV, FAMILIES, MLP
from aedepth.grid import build_grid, training_hparams
from aedepth.model import MODELS, build_model, encode_images, reconstruct_images
from aedepth.train import PLAIN_PATH, train

SHAPES = [(28, 28, 1), (8, 8, 1), (32, 32, 3), (27, 13, 3), (1, 1, 1)]
WIDTHS = [[16], [16, 32], [16, 32, 64], [5, 3, 7, 2]]
PCA = {"pca": type("B", (), {"seeded": False})}


def hparams_of(family, widths, shape, latent_dim=2):
    return {
        "widths": widths,
        "latent_dim": latent_dim,
        "architecture": family,
        "image_shape": list(shape),
    }


def test_every_family_has_a_model():
    assert set(MODELS) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("widths", WIDTHS)
def test_the_parameter_count_is_the_built_models(family, shape, widths):
    model = build_model(hparams_of(family, widths, shape, latent_dim=3))
    built = sum(p.numel() for p in model.parameters())
    assert FAMILIES[family].parameters(widths, 3, shape) == built


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("widths", WIDTHS)
def test_the_conv_multiply_adds_are_what_torch_counts(shape, widths):
    # torch's counter: 2 FLOPs per multiply-add of every convolution, transposed convolution
    # and Linear layer, biases not counted (nor are they in the family's count)
    model = build_model(hparams_of(CONV, widths, shape))
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, math.prod(shape)))
    assert counter.get_total_flops() == 2 * FAMILIES[CONV].multiply_adds(widths, 2, shape)


def test_the_mlp_counts_its_parameters_as_multiply_adds_as_before():
    # the FLOP accounting of every study before the conv family: 6 x parameters per image
    built = sum(p.numel() for p in build_model(hparams_of(MLP, [500], (28, 28, 1))).parameters())
    assert FAMILIES[MLP].training_flop([500], 2, (28, 28, 1), 60_000) == 6.0 * built * 60_000


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_images_go_through_at_their_size_and_come_back_in_their_layout(shape):
    torch.manual_seed(0)
    model = build_model(hparams_of(CONV, [4, 8], shape)).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, *shape), dtype=np.uint8)
    codes = encode_images(model, images)
    assert codes.shape == (5, 2)
    out = reconstruct_images(model, images)
    assert out.shape == (5, math.prod(shape)) and 0 <= out.min() and out.max() <= 1
    # channels last, like the input rows: pixel (0, 0)'s channels are the row's first values
    rows = torch.from_numpy(images.reshape(5, -1)).float() / 255
    as_image = model._image(rows)
    assert torch.equal(as_image[:, :, 0, 0], rows[:, : shape[2]])


def test_a_conv_model_trains_on_the_plain_loop_the_same_twice(tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (300, 8, 8), dtype=np.uint8)
    y_train = np.repeat(np.arange(10), 30)
    x_test = x_train[:50]
    hparams = hparams_of(CONV, [4, 8], (8, 8, 1)) | {
        "seed": 3,
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 1e-3,
    }
    weights = []
    for attempt in range(2):
        model, history, how = train(
            hparams, x_train, y_train, x_test, tmp_path / f"{attempt}.pt", torch.device("cpu")
        )
        weights.append(model.state_dict())
        assert how["training_path"] == PLAIN_PATH and len(history) == 2
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_architectures_add_an_axis_that_leaves_the_mlps_runs_as_they_were():
    mlp_only = build_grid(config_with(seeds=[0]), PCA)
    both = build_grid(config_with(seeds=[0], architectures=["mlp", "conv"]), PCA)
    assert "architecture" not in mlp_only.axis_names
    mlp = [run for run in both.models if run["architecture"] == "mlp"]
    conv = [run for run in both.models if run["architecture"] == "conv"]
    assert [run.id for run in mlp] == [run.id for run in mlp_only.models]  # depth1_dim2_seed0
    assert [run.id for run in conv] == [
        "depth1_dim2_seed0_archconv",
        "depth2_dim2_seed0_archconv",
        "depth3_dim2_seed0_archconv",
    ]
    config = config_with(seeds=[0], architectures=["mlp", "conv"])
    for old, new in zip(mlp_only.models, mlp):
        # the MLP's training hyperparameters are those of a study without the axis
        assert training_hparams(new, config) == training_hparams(old, config_with(seeds=[0]))
    conv = training_hparams(conv[2], config)
    assert conv["architecture"] == "conv" and conv["widths"] == [16, 32, 64]
    assert conv["params"] == sum(p.numel() for p in build_model(conv).parameters())


def test_the_matched_arm_matches_each_familys_own_budget():
    config = config_with(seeds=[0], architectures=["conv"], arms=["article", "matched_params"])
    grid = build_grid(config, PCA)
    matched = [training_hparams(r, config) for r in grid.models if r["arm"] == "matched_params"]
    budget = FAMILIES[CONV].parameters([16, 32, 64], 2, (28, 28, 1))
    assert [h["widths"][0] for h in matched][-1] == 16  # the deepest is the article's own
    assert all(abs(h["params"] - budget) <= 0.02 * budget for h in matched)


@pytest.mark.parametrize("depth", [2, 3])
def test_conv_codes_do_not_collapse_to_a_constant(depth, tmp_path):
    # a tanh code behind ReLU features saturated early and stayed constant (the decoder then
    # drew the mean image): every seed here, on the sample's digits, with a spread below 1e-3
    # of its size; the linear code's is 0.07-0.2 after 3 epochs
    from aedepth.data import load_sample

    data = load_sample(0.2)
    x_train, y_train, x_test = data["x_train"], data["y_train"], data["x_test"]
    hparams = hparams_of(CONV, [16, 32, 64][:depth], (28, 28, 1)) | {
        "depth": depth,
        "epochs": 3,
        "batch_size": 128,
        "learning_rate": 1e-3,
    }
    for seed in range(3):
        model, _, _ = train(
            hparams | {"seed": seed},
            x_train,
            y_train,
            x_test,
            tmp_path / f"{seed}.pt",
            torch.device("cpu"),
        )
        codes = encode_images(model, x_test[:1000])
        spread = codes.std(axis=0) / (np.abs(codes).mean(axis=0) + 1e-9)
        assert spread.min() > 0.02, (seed, spread)
