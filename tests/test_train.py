"""Unit tests of the training loop and its speed path: learning, exact resume, divergence,
the validation split, bit-identical paths, fp32 numerics, one way to train per config and
hardware class."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from aedepth import speed
from aedepth import train as training
from aedepth.cpus import usable_cpus
from aedepth.data import DataError, validation_split
from aedepth.hardware import hardware_class
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder, build_model
from aedepth.speed import adam_step, layer_shapes, layers_of, loss_and_gradients
from aedepth.train import HISTORY_COLUMNS, TrainingDiverged, mean_bce

CPU = torch.device("cpu")


def images(n: int, seed: int = 0) -> np.ndarray:
    """n structured 28x28 uint8 images: a bright bar at a random row or column, plus noise."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for image, where, horizontal in zip(out, rng.integers(2, 26, n), rng.integers(0, 2, n)):
        if horizontal:
            image[where - 2 : where + 2, :] = 230
        else:
            image[:, where - 2 : where + 2] = 230
    return out


def labels(n: int) -> np.ndarray:
    """Balanced class labels 0..9 for n images."""
    return np.arange(n) % 10


def train(hparams, x_train, x_test, checkpoint, device, progress=None):
    """aedepth.train.train with balanced labels for x_train; the model and history."""
    model, history, _ = training.train(
        hparams, x_train, labels(len(x_train)), x_test, checkpoint, device, progress
    )
    return model, history


def hparams(**changes) -> dict:
    # Widths large enough that every matmul takes the same route as the real study's.
    return {
        "depth": 2,
        "widths": [100, 50],
        "latent_dim": 2,
        "epochs": 3,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "seed": 0,
    } | changes


class Stop(Exception):
    pass


def stop_after(epochs: int):
    """A `progress` wrapper that kills training once `epochs` epochs are checkpointed."""

    def progress(iterable):
        for done, epoch in enumerate(iterable):
            if done == epochs:
                raise Stop
            yield epoch

    return progress


def test_loss_decreases_on_a_tiny_dataset(tmp_path):
    model, history = train(
        hparams(epochs=6), images(600), images(100, seed=1), tmp_path / "ckpt", CPU
    )
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert all(set(row) == set(HISTORY_COLUMNS) for row in history)
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert all(np.isnan(row["val_loss"]) for row in history)  # no validation split
    assert [row["kept"] for row in history] == [0, 0, 0, 0, 0, 1]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    x_train, x_test = images(300), images(50, seed=1)  # 300 = 4 full batches + 44
    whole_model, whole = train(hparams(), x_train, x_test, tmp_path / "whole", CPU)

    with pytest.raises(Stop):
        train(hparams(), x_train, x_test, tmp_path / "split", CPU, stop_after(1))
    assert (tmp_path / "split").exists()
    resumed_model, resumed = train(hparams(), x_train, x_test, tmp_path / "split", CPU)

    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert str(drop_time(resumed)) == str(drop_time(whole))  # str: nan == nan
    for (name, a), (_, b) in zip(
        whole_model.state_dict().items(), resumed_model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    saved = [torch.load(tmp_path / n, weights_only=True) for n in ("whole", "split")]
    assert torch.equal(saved[0]["shuffle_rng"], saved[1]["shuffle_rng"])
    for a, b in zip(
        saved[0]["optimizer"]["state"].values(), saved[1]["optimizer"]["state"].values()
    ):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("hparams", "was made with other hparams"),
        ("data", "was made with other data"),
        ("hardware_class", "was made with other hardware_class"),  # device, CPU, MKL mode
        ("code", "was made with other code"),
        ("threads", "was made with other threads"),
        ("matmul_route", "was made with other matmul_route"),
        ("truncated", "is not a readable plain checkpoint (RuntimeError)"),
        ("garbage", "is not a readable plain checkpoint ("),
    ],
)
def test_a_checkpoint_of_another_run_is_set_aside_and_training_starts_afresh(
    tmp_path, caplog, change, reason
):
    x_train, x_test = images(200), images(50, seed=1)
    checkpoint = tmp_path / "ckpt"
    with pytest.raises(Stop):
        train(hparams(), x_train, x_test, checkpoint, CPU, progress=stop_after(1))
    state = torch.load(checkpoint, weights_only=True)
    state["history"][0]["train_loss"] = -1.0  # what a resumed run would report for epoch 1
    torch.save(state, checkpoint)
    hp, x = hparams(), x_train
    if change == "hparams":
        hp = hparams(learning_rate=2e-3)
    elif change == "data":
        x = images(200, seed=5)
    elif change == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    elif change == "garbage":
        checkpoint.write_bytes(b"not a checkpoint")
    else:  # written on another hardware class, by other code, threads or route
        torch.save(state | {change: "other"}, checkpoint)
    with caplog.at_level(logging.INFO, logger="aedepth"):
        _, history = train(hp, x, x_test, checkpoint, CPU)
    _, fresh = train(hp, x, x_test, tmp_path / "fresh", CPU)
    assert [row["train_loss"] for row in history] == [row["train_loss"] for row in fresh]
    assert f"set aside {checkpoint} as ckpt.stale: it {reason}" in caplog.text
    assert "resuming" not in caplog.text
    assert (tmp_path / "ckpt.stale").exists()
    assert str(torch.load(checkpoint, weights_only=True)["history"]) == str(history)  # new run


def test_nan_loss_raises_training_diverged_naming_the_epoch(tmp_path):
    x_train, x_test = images(200), images(50, seed=1)
    checkpoint = tmp_path / "ckpt"
    with pytest.raises(Stop):
        train(hparams(), x_train, x_test, checkpoint, CPU, progress=stop_after(1))
    # Poison one weight of the checkpoint: the resumed epoch 2 produces a NaN loss.
    state = torch.load(checkpoint, weights_only=True)
    state["model"]["encoder.0.weight"][0, 0] = float("nan")
    torch.save(state, checkpoint)
    with pytest.raises(TrainingDiverged, match=r"became nan in epoch 2\b"):
        train(hparams(), x_train, x_test, checkpoint, CPU)


def pixels(rows: int, seed: int = 0) -> torch.Tensor:
    """(rows, 784) float32 intensities in [0, 1], as the training loop feeds them."""
    return torch.from_numpy(images(rows, seed).reshape(rows, -1)).float() / 255


@pytest.mark.parametrize("logit_scale", [0.1, 3.0, 40.0])
def test_loss_and_gradients_match_float64_bce(logit_scale):
    torch.manual_seed(0)
    model = Autoencoder([100, 50], 2)
    with torch.no_grad():  # from nearly flat to saturated output sigmoids
        model.decoder[-1].weight.mul_(logit_scale)
        model.decoder[-1].bias.mul_(logit_scale)
    x = pixels(64)
    loss = loss_and_gradients(layers_of(model), x)

    reference = Autoencoder([100, 50], 2).double()
    reference.load_state_dict(model.state_dict())
    x64 = x.double()
    expected = F.binary_cross_entropy_with_logits(reference(x64), x64)
    expected.backward()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    for (name, ours), theirs in zip(model.named_parameters(), reference.parameters()):
        # fp32 accuracy: errors relative to the largest entry of each gradient
        error = (ours.grad.double() - theirs.grad).abs().max() / theirs.grad.abs().max()
        assert error < 1e-5, name


@pytest.mark.parametrize(
    ("widths", "latent_dim", "rows"), [([100], 2, 64), ([100, 50], 3, 37), ([120, 60, 30], 2, 50)]
)
def test_gradients_are_bit_identical_to_autograd(widths, latent_dim, rows):
    """The written-out backward must be autograd's, kernel for kernel, on any depth."""
    torch.manual_seed(1)
    model = Autoencoder(widths, latent_dim)
    x = pixels(rows, seed=2)
    loss = loss_and_gradients(layers_of(model), x)
    ours = {name: p.grad.clone() for name, p in model.named_parameters()}

    model.zero_grad(set_to_none=True)
    expected = F.binary_cross_entropy_with_logits(model(x), x)  # the plain loop's loss
    expected.backward()
    for name, param in model.named_parameters():
        assert torch.equal(ours[name], param.grad), name
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_layers_of_pairs_each_linear_with_its_activation():
    layers = layers_of(Autoencoder([100, 50], 2))
    assert [(lin.in_features, lin.out_features) for lin, _ in layers] == [
        (784, 100),
        (100, 50),
        (50, 2),
        (2, 50),
        (50, 100),
        (100, 784),
    ]
    kinds = [type(activation).__name__ if activation else None for _, activation in layers]
    assert kinds == ["Sigmoid", "Sigmoid", "Tanh", "Sigmoid", "Sigmoid", None]


def test_a_layer_without_a_written_backward_is_refused():
    model = Autoencoder([100], 2)
    model.encoder[1] = torch.nn.ReLU()
    with pytest.raises(TypeError, match="no backward written for ReLU"):
        layers_of(model)
    model = Autoencoder([100], 2)
    model.encoder.insert(2, torch.nn.Sigmoid())  # two activations in a row
    with pytest.raises(TypeError, match="no backward written for Sigmoid here"):
        layers_of(model)


def test_mean_bce_matches_torch():
    model = Autoencoder([100], 2)
    pixels = torch.from_numpy(images(300).reshape(300, -1))
    x = pixels.double() / 255
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(model.double()(x), x).item()
    assert mean_bce(model.float(), pixels, chunk=128) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_step_is_bit_identical_to_optimizer_step(weight_decay):
    models = [Autoencoder([100, 50], 2) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optimizers = [
        torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=weight_decay, fused=True)
        for m in models
    ]
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        grads = [torch.randn(p.shape, generator=generator) for p in models[0].parameters()]
        for model in models:
            for param, grad in zip(model.parameters(), grads):
                param.grad = grad.clone()
        optimizers[0].step()
        adam_step(optimizers[1])
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, torch.zeros_like(a))
    states = [o.state_dict()["state"] for o in optimizers]
    for key in states[0]:
        assert all(torch.equal(states[0][key][k], states[1][key][k]) for k in states[0][key])
    assert states[1][0]["step"].item() == 4


STUDY_LAYERS = layer_shapes(Autoencoder([500, 300, 100], 2))


def _linear_errors(rows: int, n_in: int, n_out: int) -> list[float]:
    """Relative errors (to the largest |entry|) of F.linear and its backward vs float64."""
    generator = torch.Generator().manual_seed(1)
    x, weight, bias, grad = (
        torch.empty(shape).uniform_(-1, 1, generator=generator)
        for shape in ((rows, n_in), (n_out, n_in), (n_out,), (rows, n_out))
    )
    x.requires_grad_()
    weight.requires_grad_()
    out = F.linear(x, weight, bias)
    out.backward(grad)
    x64, w64, g64 = x.detach().double(), weight.detach().double(), grad.double()
    pairs = [
        (out.detach(), x64 @ w64.T + bias.double()),
        (x.grad, g64 @ w64),
        (weight.grad, g64.T @ x64),
    ]
    return [((a.double() - b).abs().max() / b.abs().max()).item() for a, b in pairs]


def study_route(requested: str) -> str:
    """speed.training_route for the study's layers and batch shapes."""
    return speed.training_route(requested, CPU, STUDY_LAYERS, {128, 96}, {1024, 784})


def fake_cpu(monkeypatch, vendor: str, flags: set[str]) -> None:
    monkeypatch.setattr(speed, "cpu_info", lambda: (vendor, flags))
    monkeypatch.setattr(speed, "_cpu_has_amx", lambda: "amx_tile" in flags)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("requested", ["auto", "default", "onednn"])
def test_the_matmul_route_computes_in_fp32(threads, requested):
    """Every matmul of the study, on each route this machine allows, is fp32-accurate:
    bf16 or tf32 arithmetic would be off by about 1e-3 or 1e-4."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        route = study_route(requested)
        with speed.matmul_route(route):
            for n_in, n_out in STUDY_LAYERS:
                for rows in (128, 96):
                    assert max(_linear_errors(rows, n_in, n_out)) < 1e-5, (route, rows, n_in, n_out)
    except UserFacingError:
        assert requested == "onednn"  # not proven exact here (e.g. a CPU with AMX)
    finally:
        torch.set_num_threads(previous)
    assert torch.backends.mkldnn.matmul.fp32_precision == "none"  # restored


def test_the_route_is_a_fixed_rule_of_the_config_and_the_cpu(monkeypatch):
    """auto: oneDNN's AVX-512 kernels on AMD CPUs with AVX-512 (where MKL takes its AVX2
    branch), where the float64 probe proves them exact; MKL's default route elsewhere."""
    exact = {"yes": True}
    monkeypatch.setattr(
        speed, "exact_routes", lambda *a, **k: ["default"] + ["onednn-fp32"] * exact["yes"]
    )
    fake_cpu(monkeypatch, "AuthenticAMD", {"avx2", "avx512f"})
    assert study_route("auto") == "onednn-fp32"
    assert study_route("default") == "default"
    fake_cpu(monkeypatch, "AuthenticAMD", {"avx2"})  # a Zen 3
    assert study_route("auto") == "default"
    assert study_route("onednn") == "onednn-fp32"  # asked for, and exact
    fake_cpu(monkeypatch, "GenuineIntel", {"avx2", "avx512f"})  # MKL's own CPUs
    assert study_route("auto") == "default"
    exact["yes"] = False  # not proven exact: auto keeps the default, onednn is refused
    fake_cpu(monkeypatch, "AuthenticAMD", {"avx2", "avx512f"})
    assert study_route("auto") == "default"
    with pytest.raises(UserFacingError, match="matmul_route: onednn is not proven fp32-exact"):
        study_route("onednn")
    assert speed.training_route("onednn", torch.device("cuda"), STUDY_LAYERS, {128}) == "cuda-fp32"


def test_a_route_that_is_not_fp32_exact_is_refused(monkeypatch):
    """If oneDNN computed in bf16 (as on CPUs with AMX), the probe must refuse it."""
    exact = F.linear

    def bf16_linear(x, weight, bias=None):
        return exact(x.bfloat16().float(), weight.bfloat16().float(), bias)

    monkeypatch.setattr(speed.F, "linear", bf16_linear)
    monkeypatch.setattr(speed, "_exact_shapes", {})
    fake_cpu(monkeypatch, "AuthenticAMD", {"avx2", "avx512f"})
    assert study_route("auto") == "default"
    with pytest.raises(UserFacingError):
        study_route("onednn")


def test_cpus_with_amx_never_take_the_bf16_setting(monkeypatch):
    fake_cpu(monkeypatch, "AuthenticAMD", {"avx2", "avx512f", "amx_tile"})
    assert study_route("auto") == "default"
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "bf16"  # set by someone else
    try:
        with speed.matmul_route("default"):
            assert matmul.fp32_precision == "ieee"  # strict fp32 regardless
        assert matmul.fp32_precision == "bf16"  # and restored
    finally:
        matmul.fp32_precision = previous


@pytest.mark.parametrize(
    ("val_losses", "patience", "kept", "stop"),
    [
        ([0.5, 0.4, 0.45, 0.46], 0, 4, False),  # off: the last epoch, never stop
        ([0.5, 0.4, 0.45, 0.46], 2, 2, True),
        ([0.5, 0.4, 0.45], 2, 2, False),
        ([0.5, 0.4, 0.4, 0.41], 2, 2, True),  # equal is not better
    ],
)
def test_early_stopping_rule(val_losses, patience, kept, stop):
    assert training.kept_epoch(val_losses, patience) == kept
    assert training.should_stop(val_losses, patience) == stop


def test_early_stopping_keeps_the_best_weights_by_validation_loss_only(tmp_path, monkeypatch):
    # Validation losses that get worse after epoch 2 (while the test loss keeps improving):
    # training stops after epoch 4 and the returned model holds the weights of epoch 2.
    val_losses = iter([0.30, 0.20, 0.25, 0.26, 0.27, 0.28])
    test_losses = iter([0.50, 0.40, 0.30, 0.20, 0.10, 0.05])
    n_val = 16  # a quarter of the 64 training images; the test split has 10

    def fake_mean_bce(model, images):
        return next(val_losses) if len(images) == n_val else next(test_losses)

    monkeypatch.setattr(training, "mean_bce", fake_mean_bce)
    checkpoint = tmp_path / "ckpt"
    saved = {}

    def remember(epochs):  # the weights of each finished epoch, from its checkpoint
        for epoch in epochs:
            yield epoch
            saved[epoch] = torch.load(checkpoint, weights_only=True)["model"]

    model, history = train(
        hparams(epochs=6, early_stopping_patience=2, validation_fraction=0.25),
        images(64),
        images(10, seed=1),
        checkpoint,
        CPU,
        progress=remember,
    )
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert [row["val_loss"] for row in history] == [0.30, 0.20, 0.25, 0.26]
    assert [row["test_loss"] for row in history] == [0.50, 0.40, 0.30, 0.20]
    assert [row["kept"] for row in history] == [0, 1, 0, 0]
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[2][key]), key


class MatmulPrecisions(TorchDispatchMode):
    """Records, for every matmul, its operands' shapes and the oneDNN precision in force."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm):
            shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
            self.calls.append((shapes, torch.backends.mkldnn.matmul.fp32_precision))
        return func(*args, **(kwargs or {}))


def test_small_layers_take_the_default_route_inside_the_onednn_route():
    model = Autoencoder([100, 50], 2)  # 50 x 2 and 2 x 50 weights: small; the rest not
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "bf16"  # as onednn-fp32 sets it
    try:
        with MatmulPrecisions() as recorder:
            loss_and_gradients(layers_of(model), pixels(64))
        assert matmul.fp32_precision == "bf16"  # restored
    finally:
        matmul.fp32_precision = previous
    assert len(recorder.calls) == 6 + 6 + 5  # forward, weight gradients, input gradients
    for shapes, precision in recorder.calls:
        small = any(2 in shape for shape in shapes)  # the latent code's width
        assert precision == ("ieee" if small else "bf16"), shapes
    assert sum(precision == "ieee" for _, precision in recorder.calls) == 2 + 2 + 2


# --- the validation split --------------------------------------------------------------------


def test_validation_split_is_stratified_reproducible_and_disjoint():
    y = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])
    fit, val = validation_split(y, 0.1)
    assert len(val) == 95 and len(fit) + len(val) == len(y)
    assert np.array_equal(np.sort(np.concatenate([fit, val])), np.arange(len(y)))
    assert np.array_equal(np.bincount(y[val]), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14])  # per class
    again_fit, again_val = validation_split(y, 0.1)
    assert np.array_equal(fit, again_fit) and np.array_equal(val, again_val)
    assert not np.array_equal(val, validation_split(y, 0.1, seed=1)[1])


def test_validation_fraction_zero_fits_on_everything_and_bad_fractions_are_refused():
    fit, val = validation_split(labels(30), 0)
    assert np.array_equal(fit, np.arange(30)) and len(val) == 0
    for fraction in (-0.1, 1.0):
        with pytest.raises(DataError, match="validation_fraction"):
            validation_split(labels(30), fraction)
    with pytest.raises(DataError, match="cannot split 30 training images"):
        validation_split(labels(30), 0.1)  # 3 validation images for 10 classes


def test_early_stopping_without_a_validation_split_is_refused(tmp_path):
    with pytest.raises(UserFacingError, match="set validation_fraction above 0"):
        train(hparams(early_stopping_patience=2), images(64), images(10), tmp_path / "c", CPU)
    assert not (tmp_path / "c").exists()


def test_training_never_sees_validation_images_and_the_test_split_only_sets_test_loss(tmp_path):
    x_train, x_test = images(200), images(50, seed=1)
    _, val_index = validation_split(labels(200), 0.2)
    other_val, other_test = x_train.copy(), images(50, seed=2)
    other_val[val_index] = images(len(val_index), seed=3)
    runs = [
        train(hparams(validation_fraction=0.2), x, t, tmp_path / str(i), CPU)
        for i, (x, t) in enumerate([(x_train, x_test), (other_val, x_test), (x_train, other_test)])
    ]
    (model, history), (val_model, val_history), (test_model, test_history) = runs
    for other in (val_model, test_model):
        for a, b in zip(model.parameters(), other.parameters(), strict=True):
            assert torch.equal(a, b)
    column = lambda rows, key: [row[key] for row in rows]  # noqa: E731
    assert column(val_history, "train_loss") == column(history, "train_loss")
    assert column(val_history, "val_loss") != column(history, "val_loss")
    assert column(test_history, "val_loss") == column(history, "val_loss")
    assert column(test_history, "test_loss") != column(history, "test_loss")


# --- the speed path against the plain loop ---------------------------------------------------


def fast_and_plain(tmp_path, monkeypatch, hp: dict, route: str) -> list[tuple]:
    """train() on the speed path, then with it switched off, both on matmul_route `route`:
    [(model, history, how)] * 2."""
    x_train, x_test = images(300), images(50, seed=1)  # 4 full batches of 64 + a tail
    runs = [training.train(hp, x_train, labels(300), x_test, tmp_path / "fast", CPU, None, route)]
    with monkeypatch.context() as patch:
        patch.setattr(speed, "fast_step", lambda model, optimizer, device: None)
        runs.append(
            training.train(hp, x_train, labels(300), x_test, tmp_path / "plain", CPU, None, route)
        )
    return runs


@pytest.mark.parametrize("route", ["default", "onednn"])
def test_both_training_paths_give_bit_identical_weights(tmp_path, monkeypatch, route):
    """The written-out step replaces loss.backward() + optimizer.step() bit for bit, on the
    same matmul route. (Inside the oneDNN route the speed path sends layers below
    SMALL_LAYER_WEIGHTS to the default route, which the plain loop cannot: the rule is
    switched off here so both take the same route for every matmul.)"""
    monkeypatch.setattr(speed, "SMALL_LAYER_WEIGHTS", 0)
    try:
        (fast, fast_history, fast_how), (plain, plain_history, plain_how) = fast_and_plain(
            tmp_path, monkeypatch, hparams(validation_fraction=0.2), route
        )
    except UserFacingError:
        pytest.skip(f"the {route} route is not proven exact on this machine")
    assert fast_how["training_path"] == "written-out backward"
    assert plain_how["training_path"] == "autograd"
    assert (
        plain_how["matmul_route"]
        == fast_how["matmul_route"]
        == speed.training_route(route, CPU, [(784, 100)], {64})
    )
    for (name, a), b in zip(fast.named_parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(fast_history, plain_history, strict=True):  # loss values: fp32 accuracy
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert (a["val_loss"], a["test_loss"]) == (b["val_loss"], b["test_loss"])  # same weights


def dropout_model(hparams: dict) -> Autoencoder:
    """The study's model with dropout after the first hidden layer: no written-out backward."""
    model = build_model(hparams)
    model.encoder.insert(2, torch.nn.Dropout(0.2))
    return model


def test_a_model_the_speed_path_does_not_support_trains_on_the_plain_loop(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(training, "build_model", dropout_model)
    x_train, x_test = images(300), images(50, seed=1)
    with caplog.at_level(logging.INFO, logger="aedepth"):
        model, whole, how = training.train(
            hparams(), x_train, labels(300), x_test, tmp_path / "whole", CPU
        )
    assert how["training_path"] == "autograd"
    off = [r.message for r in caplog.records if r.message.startswith("speed path off")]
    assert off == ["speed path off: no backward written for Dropout here; using the plain loop"]
    assert isinstance(model.encoder[2], torch.nn.Dropout)
    assert all(np.isfinite(row["train_loss"]) for row in whole)

    # Dropout draws from the global generator: a resumed run restores it too.
    with pytest.raises(Stop):
        training.train(
            hparams(), x_train, labels(300), x_test, tmp_path / "split", CPU, stop_after(1)
        )
    resumed_model, resumed, _ = training.train(
        hparams(), x_train, labels(300), x_test, tmp_path / "split", CPU
    )
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in whole]
    for a, b in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_missing_private_torch_function_falls_back_to_the_plain_loop(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(speed, "_fused_adam_", None)
    with caplog.at_level(logging.INFO, logger="aedepth"):
        _, history, how = training.train(
            hparams(epochs=1), images(100), labels(100), images(20), tmp_path / "c", CPU
        )
    assert how["training_path"] == "autograd" and len(history) == 1
    off = [r.message for r in caplog.records if r.message.startswith("speed path off")]
    assert off == [
        f"speed path off: torch {torch.__version__} lacks torch._fused_adam_; using the plain loop"
    ]
    assert any(r.message.startswith("training path: autograd;") for r in caplog.records)


@pytest.mark.parametrize(
    ("optimizer", "device", "reason"),
    [
        (lambda p: torch.optim.Adam(p, fused=False), CPU, "not a plain fused Adam"),
        (lambda p: torch.optim.Adam(p, fused=True, amsgrad=True), CPU, "not a plain fused Adam"),
        (lambda p: torch.optim.SGD(p, lr=0.1), CPU, "not one torch.optim.Adam"),
        (lambda p: torch.optim.Adam(p, fused=True), torch.device("meta"), "CPUs only"),
    ],
)
def test_the_speed_path_refuses_what_it_does_not_cover(optimizer, device, reason, caplog):
    model = Autoencoder([100], 2)
    with caplog.at_level(logging.INFO, logger="aedepth"):
        assert speed.fast_step(model, optimizer(model.parameters()), device) is None
    assert reason in caplog.text
    assert speed.fast_step(model, torch.optim.Adam(model.parameters(), fused=True), CPU)


# --- one config, one way to train ------------------------------------------------------------


def test_training_records_how_it_trained(tmp_path):
    _, _, how = training.train(
        hparams(epochs=1), images(100), labels(100), images(20), tmp_path / "c", CPU
    )
    assert how == {
        "hardware_class": hardware_class("cpu"),
        "threads": torch.get_num_threads(),
        "training_path": "written-out backward",
        "matmul_route": study_route("auto"),
        "subnormals_flushed": training._subnormals_flushed(),
    }
    assert (
        how["hardware_class"].startswith("cpu: ")
        and f"torch {torch.__version__}" in (how["hardware_class"])
    )


def test_the_routes_probe_takes_nothing_from_the_training_generator(tmp_path, monkeypatch):
    """The float64 probe of the oneDNN route runs after the seed is set and before epoch 1,
    on its own generator: a dropout model (which draws from torch's global generator every
    step) trains to the same bits with and without it."""
    monkeypatch.setattr(training, "build_model", dropout_model)
    x_train, x_test = images(300), images(50, seed=1)
    hp = hparams(epochs=2)
    # the default route in both runs: "auto" would train on oneDNN where it is proven exact
    # (an AMD CPU with AVX-512), which rounds differently from the default route
    plain, history, _ = training.train(
        hp, x_train, labels(300), x_test, tmp_path / "a", CPU, matmul_route="default"
    )
    probed = []

    def probe_then_default(requested, device, layers, train_rows, eval_rows=frozenset()):
        speed._exact_shapes.clear()  # measured anew, not remembered from an earlier test
        with monkeypatch.context() as patch:
            patch.setattr(speed, "_cpu_has_amx", lambda: False)  # the probe runs on any CPU
            probed.append(speed.exact_routes(device, layers, train_rows, eval_rows))
        return "default"

    monkeypatch.setattr(speed, "training_route", probe_then_default)
    model, probed_history, _ = training.train(hp, x_train, labels(300), x_test, tmp_path / "b", CPU)
    assert probed and speed._exact_shapes  # the probe ran
    assert [r["train_loss"] for r in probed_history] == [r["train_loss"] for r in history]
    for a, b in zip(plain.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_importing_aedepth_changes_no_environment_variable(tmp_path):
    out = run_fresh(
        "import os, importlib, pkgutil\n"
        # scikit-learn sets KMP_* variables on import: its doing, not aedepth's
        "import torch, sklearn, bokeh, matplotlib, pandas, scipy\n"
        "import aedepth\n"
        "before = dict(os.environ)\n"
        "for m in pkgutil.iter_modules(aedepth.__path__):\n"
        "    importlib.import_module(f'aedepth.{m.name}')\n"
        "print(dict(os.environ) == before, 'MKL_CBWR' in os.environ)",
        tmp_path,
        {k: v for k, v in os.environ.items() if k != "MKL_CBWR"},
    )
    assert out == "True False"


def run_fresh(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """stdout of `code` in a new interpreter (its own compute threads) in `cwd` (aedepth is
    installed); `env` instead of this process's environment."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
    )
    return result.stdout.strip()


# Every matmul of a depth-3 training step of the study (forward, weight and input gradient
# of each layer), at 1 and at 2 threads: whether all agree bit for bit, and MKL's mode as
# strict_mkl (which training calls first) leaves it.
SAME_BITS_ON_ANY_THREADS = """
import torch
from aedepth.hardware import strict_mkl
mode = strict_mkl()
def products(threads):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    out = []
    sizes = [784, 500, 300, 100, 2, 100, 300, 500, 784]
    for n_in, n_out in zip(sizes, sizes[1:]):
        x, w = torch.rand(128, n_in, generator=g), torch.rand(n_out, n_in, generator=g) - 0.5
        grad = torch.rand(128, n_out, generator=g) - 0.5
        out += [torch.addmm(torch.rand(n_out, generator=g), x, w.t()), grad.t() @ x, grad @ w]
    return out
same = all(torch.equal(a, b) for a, b in zip(products(1), products(2)))
print(same, mode)
"""


def _intel_with_avx2() -> bool:
    """An Intel CPU with AVX2: where MKL documents its strict mode (AVX2 and AVX-512 branches)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "GenuineIntel" in info and " avx2" in info


@pytest.mark.skipif(usable_cpus() < 2, reason="needs 2 CPUs for 2 compute threads")
@pytest.mark.skipif(
    not _intel_with_avx2(),
    reason="MKL documents its strict mode for Intel CPUs with AVX2 or AVX-512 only; elsewhere "
    "training_threads is part of a model's recipe",
)
def test_matmuls_give_the_same_bits_on_any_thread_count(tmp_path):
    # strict_mkl puts MKL in its strict reproducible mode before the first matmul: without
    # it, MKL splits some of these sums by thread (on an Intel Xeon: 784x500 dgrad)
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    assert run_fresh(SAME_BITS_ON_ANY_THREADS, tmp_path, env) == "True AUTO,STRICT"


def test_a_users_own_mkl_mode_is_kept(tmp_path):
    if not torch.backends.mkl.is_available():
        pytest.skip("this torch has no MKL")
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    assert run_fresh(SAME_BITS_ON_ANY_THREADS, tmp_path, env).endswith(" COMPATIBLE")


def test_the_mkl_mode_recorded_is_the_one_in_effect(tmp_path):
    # once MKL has run, its mode cannot change: what a run records is what MKL runs in
    if not torch.backends.mkl.is_available():
        pytest.skip("this torch has no MKL")
    out = run_fresh(
        "import torch\n"
        "from aedepth.hardware import mkl_mode, strict_mkl\n"
        "torch.rand(300, 300) @ torch.rand(300, 300)\n"
        "print(strict_mkl(), mkl_mode())",
        tmp_path,
        {k: v for k, v in os.environ.items() if k != "MKL_CBWR"},
    )
    assert out.split() == ["BRANCH_OFF", "BRANCH_OFF"]  # MKL's default, not strict


def test_training_flushes_subnormals_on_every_compute_thread(tmp_path):
    # train() sets the mode before its first computation, so the compute threads started
    # later (here two) inherit it: an op that makes subnormals gives zeros on all of them
    out = run_fresh(
        "import numpy as np, torch\n"
        "from aedepth import train as t\n"
        "torch.set_num_threads(2)\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)\n"
        "hp = dict(widths=[16], latent_dim=2, seed=0, epochs=1, batch_size=32,"
        " learning_rate=1e-3)\n"
        "_, _, how = t.train(hp, x, np.arange(64) % 10, x[:16], 'ck', torch.device('cpu'))\n"
        "underflow = torch.exp(torch.full((2 * 65536,), -100.0))\n"
        "print(how['subnormals_flushed'], underflow.count_nonzero().item())",
        tmp_path,
    )
    assert out == "True 0"


def test_training_puts_mkl_in_its_strict_mode_before_its_first_matmul(tmp_path):
    if not torch.backends.mkl.is_available():
        pytest.skip("this torch has no MKL")
    out = run_fresh(
        "import numpy as np, torch\n"
        "from aedepth import train as t\n"
        "x = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)\n"
        "hp = dict(widths=[16], latent_dim=2, seed=0, epochs=1, batch_size=32,"
        " learning_rate=1e-3)\n"
        "_, _, how = t.train(hp, x, np.arange(64) % 10, x[:16], 'ck', torch.device('cpu'))\n"
        "print(how['hardware_class'])",
        tmp_path,
        {k: v for k, v in os.environ.items() if k != "MKL_CBWR"},
    )
    assert out.endswith(", MKL AUTO,STRICT"), out


def test_compute_threads_started_before_the_mode_are_caught(tmp_path):
    # threads already running keep their float mode: the check sees the unflushed half
    out = run_fresh(
        "import torch\n"
        "from aedepth.train import flush_subnormals\n"
        "torch.set_num_threads(2)\n"
        "torch.rand(512, 512) @ torch.rand(512, 512)\n"  # starts the compute threads
        "print(flush_subnormals())",
        tmp_path,
    )
    assert out == "False"
