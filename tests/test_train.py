"""Unit tests of the training loop and its speed path: learning, exact resume, divergence,
the validation split, bit-identical paths, fp32 numerics."""

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
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder, build_model
from aedepth.speed import adam_step, fp32_matmuls, layer_shapes, layers_of, loss_and_gradients
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


def train(hparams, x_train, x_test, checkpoint, device, progress=None, choice_cache=None):
    """aedepth.train.train with balanced labels for x_train; the model and history."""
    model, history, _ = training.train(
        hparams, x_train, labels(len(x_train)), x_test, checkpoint, device, progress, choice_cache
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
    choices = tmp_path / "choices.json"  # as the workflow's jobs: both runs train the same way
    whole_model, whole = train(hparams(), x_train, x_test, tmp_path / "whole", CPU, None, choices)

    with pytest.raises(Stop):
        train(hparams(), x_train, x_test, tmp_path / "split", CPU, stop_after(1), choices)
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
        ("device", "was made with other device"),
        ("code", "was made with other code"),
        ("mkl_cbwr", "was made with other mkl_cbwr"),  # MKL's reproducibility mode
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
    else:  # written on another device, by other training code or in another MKL mode
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


@pytest.mark.parametrize("threads", [1, 2])
def test_the_matmul_route_computes_in_fp32(threads):
    """Every matmul of the study, on whichever route this machine takes, is fp32-accurate:
    bf16 or tf32 arithmetic would be off by about 1e-3 or 1e-4."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with fp32_matmuls(CPU, STUDY_LAYERS, train_rows={128, 96}, eval_rows={4096}) as route:
            assert route in ("onednn-fp32", "default")
            for n_in, n_out in STUDY_LAYERS:
                for rows in (128, 96):
                    assert max(_linear_errors(rows, n_in, n_out)) < 1e-5, (route, rows, n_in, n_out)
    finally:
        torch.set_num_threads(previous)
    assert torch.backends.mkldnn.matmul.fp32_precision == "none"  # restored


def test_the_fast_route_is_taken_where_it_is_exact():
    """On an x86 Linux CPU with AVX-512 and no AMX (this project's machines) training takes
    oneDNN's AVX-512 fp32 kernels rather than MKL's AVX2 path."""
    if not (
        torch.backends.mkldnn.is_available()
        and torch.backends.cpu.get_cpu_capability() == "AVX512"
        and speed._cpu_has_amx() is False
    ):
        pytest.skip("the oneDNN route is only proven on x86 Linux CPUs with AVX-512, no AMX")
    with fp32_matmuls(CPU, STUDY_LAYERS, train_rows={128}) as route:
        assert route == "onednn-fp32"
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"


def test_a_route_that_is_not_fp32_exact_is_refused(monkeypatch):
    """If oneDNN computed in bf16 (as on CPUs with AMX), the probe must fall back."""
    exact = F.linear

    def bf16_linear(x, weight, bias=None):
        return exact(x.bfloat16().float(), weight.bfloat16().float(), bias)

    monkeypatch.setattr(speed.F, "linear", bf16_linear)
    monkeypatch.setattr(speed, "_exact_shapes", {})
    monkeypatch.setattr(speed, "_cpu_has_amx", lambda: False)
    with fp32_matmuls(CPU, STUDY_LAYERS, train_rows={128}) as route:
        assert route == "default"
        assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"


def test_cpus_with_amx_never_take_the_bf16_setting(monkeypatch):
    monkeypatch.setattr(speed, "_cpu_has_amx", lambda: True)
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "bf16"  # set by someone else
    try:
        with fp32_matmuls(CPU, STUDY_LAYERS, train_rows={128}) as route:
            assert route == "default"
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


def fast_and_plain(tmp_path, monkeypatch, hp: dict, route: str | None = None) -> list[tuple]:
    """train() on the speed path, then with it switched off: [(model, history, how)] * 2;
    both on `route` where it is a candidate (else the measured choice)."""
    x_train, x_test = images(300), images(50, seed=1)  # 4 full batches of 64 + a tail
    choose = speed.fastest
    monkeypatch.setattr(
        speed,
        "fastest",
        lambda timings: next((c for c in timings if c.route == route), None) or choose(timings),
    )
    runs = [training.train(hp, x_train, labels(300), x_test, tmp_path / "fast", CPU)]
    with monkeypatch.context() as patch:
        patch.setattr(speed, "fast_step", lambda model, optimizer, device: None)
        runs.append(training.train(hp, x_train, labels(300), x_test, tmp_path / "plain", CPU))
    return runs


@pytest.mark.parametrize("route", ["default", "onednn-fp32"])
def test_both_training_paths_give_bit_identical_weights(tmp_path, monkeypatch, route):
    """The written-out step replaces loss.backward() + optimizer.step() bit for bit, on the
    same matmul route. (Inside the oneDNN route the speed path sends layers below
    SMALL_LAYER_WEIGHTS to the default route, which the plain loop cannot: the rule is
    switched off here so both take the same route for every matmul.)"""
    if route == "default":
        monkeypatch.setattr(speed, "_cpu_has_amx", lambda: True)  # keeps oneDNN off
    else:
        monkeypatch.setattr(speed, "SMALL_LAYER_WEIGHTS", 0)
    (fast, fast_history, fast_how), (plain, plain_history, plain_how) = fast_and_plain(
        tmp_path, monkeypatch, hparams(validation_fraction=0.2), route
    )
    if fast_how["matmul_route"] != route:
        pytest.skip(f"the {route} route is not proven exact on this machine")
    assert fast_how["training_path"] == "written-out backward"
    assert plain_how["training_path"] == "autograd" and plain_how["matmul_route"] == route
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


# --- the choice by measurement ---------------------------------------------------------------

FAST_DEFAULT = speed.Candidate("written-out backward", "default")
FAST_ONEDNN = speed.Candidate("written-out backward", "onednn-fp32")
PLAIN_DEFAULT = speed.Candidate("autograd", "default")


def test_the_fastest_candidate_is_the_one_with_the_best_round():
    timings = {
        FAST_ONEDNN: [4.6e-3, 4.8e-3, 5.1e-3],  # as on an Ice Lake: oneDNN slower than MKL
        FAST_DEFAULT: [3.6e-3, 3.4e-3, 9.0e-3],  # one round slowed by a neighbour
        PLAIN_DEFAULT: [4.8e-3, 4.9e-3, 5.0e-3],
    }
    assert speed.fastest(timings) == FAST_DEFAULT
    timings[FAST_ONEDNN] = [2.1e-3, 2.2e-3, 2.0e-3]  # as on a Zen 5: oneDNN's AVX-512 wins
    assert speed.fastest(timings) == FAST_ONEDNN
    tie = {FAST_DEFAULT: [1.0, 2.0], PLAIN_DEFAULT: [1.0, 1.0]}
    assert speed.fastest(tie) == FAST_DEFAULT  # the first, i.e. the preferred, on a tie
    near = {FAST_DEFAULT: [1.0], FAST_ONEDNN: [0.98], PLAIN_DEFAULT: [0.9]}
    assert speed.fastest(near) == PLAIN_DEFAULT  # 2 % faster: noise; 10 %: a real gain
    assert speed.fastest({FAST_DEFAULT: [1.0], FAST_ONEDNN: [0.98]}) == FAST_DEFAULT


def test_the_probe_costs_well_under_one_percent_of_a_default_job():
    job_steps = 50 * -(-60_000 // 128)  # 50 epochs of 469 steps
    for candidates in (2, 4):
        steps = speed.probe_steps(job_steps, candidates)
        probe = candidates * (1 + speed.PROBE_ROUNDS) * steps
        assert steps >= 3 and probe <= 0.005 * job_steps, (candidates, steps)
    assert speed.probe_steps(10, 4) == speed.PROBE_MIN_STEPS  # a tiny job: a few steps a round


def test_the_choice_and_its_timings_are_logged_in_one_line(monkeypatch, caplog):
    fake = {FAST_DEFAULT: [3.5e-3, 3.4e-3, 3.6e-3], FAST_ONEDNN: [4.7e-3, 4.6e-3, 4.9e-3]}
    monkeypatch.setattr(speed, "time_steps", lambda makers, *args: fake)
    model = Autoencoder([100], 2)
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    makers = dict.fromkeys(fake, None)
    with caplog.at_level(logging.INFO, logger="aedepth"):
        choice, ms = speed.choose_training(makers, model, optimizer, pixels(128), 23_450)
    assert choice == FAST_DEFAULT
    assert ms == {str(FAST_DEFAULT): 3.4, str(FAST_ONEDNN): 4.6}
    (line,) = [r.message for r in caplog.records if r.message.startswith("speed probe")]
    assert line.endswith(
        "written-out backward on default 3.40, written-out backward on onednn-fp32 4.60; "
        "training takes written-out backward on default"
    )
    with caplog.at_level(logging.INFO, logger="aedepth"):  # one candidate: nothing to time
        only = {PLAIN_DEFAULT: None}
        assert speed.choose_training(only, model, optimizer, pixels(128), 10) == (PLAIN_DEFAULT, {})


def test_the_probe_leaves_the_runs_weights_optimizer_and_generators_alone():
    torch.manual_seed(0)
    model = Autoencoder([100, 50], 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    makers = {
        FAST_DEFAULT: lambda m, o: speed.fast_step(m, o, CPU),
        PLAIN_DEFAULT: training.plain_step,
    }
    timings = speed.time_steps(makers, model, optimizer, pixels(64), steps=2)
    assert set(timings) == set(makers)
    assert all(len(t) == speed.PROBE_ROUNDS and min(t) > 0 for t in timings.values())
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not optimizer.state and all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_training_records_its_measured_choice_and_a_resumed_run_keeps_it(tmp_path, monkeypatch):
    x_train, x_test = images(300), images(50, seed=1)
    picks = []
    monkeypatch.setattr(
        speed, "fastest", lambda timings: picks.append(list(timings)) or PLAIN_DEFAULT
    )
    monkeypatch.setattr(speed, "_cpu_has_amx", lambda: True)  # one route: default
    with pytest.raises(Stop):
        training.train(hparams(), x_train, labels(300), x_test, tmp_path / "c", CPU, stop_after(1))
    assert picks == [[FAST_DEFAULT, PLAIN_DEFAULT]]
    # resumed: the interrupted run's choice (autograd) is kept, though another would win now
    monkeypatch.setattr(speed, "fastest", lambda timings: picks.append(1) or FAST_DEFAULT)
    _, history, how = training.train(hparams(), x_train, labels(300), x_test, tmp_path / "c", CPU)
    assert len(picks) == 1 and len(history) == 3
    assert how == {
        "training_path": "autograd",
        "matmul_route": "default",
        "subnormals_flushed": training._subnormals_flushed(),
        "mkl_cbwr": os.environ["MKL_CBWR"],  # as importing aedepth set it (or the user)
    }
    _, _, how = training.train(hparams(), x_train, labels(300), x_test, tmp_path / "new", CPU)
    assert how["training_path"] == "written-out backward" and how["matmul_route"] == "default"
    assert set(how["probe_ms_per_step"]) == {str(FAST_DEFAULT), str(PLAIN_DEFAULT)}


def test_a_remembered_choice_is_reused_for_the_same_key_only(tmp_path):
    cache = tmp_path / "cache" / "choices.json"
    calls = []

    def measure(choice):
        return lambda: calls.append(choice) or (choice, {str(choice): 1.0})

    candidates = [FAST_DEFAULT, FAST_ONEDNN]
    assert speed.remembered_choice(cache, "a", candidates, measure(FAST_ONEDNN)) == (
        FAST_ONEDNN,
        {str(FAST_ONEDNN): 1.0},
    )
    # the same key: no new measurement, whatever it would say now
    assert speed.remembered_choice(cache, "a", candidates, measure(FAST_DEFAULT))[0] == FAST_ONEDNN
    assert speed.remembered_choice(cache, "b", candidates, measure(FAST_DEFAULT))[0] == FAST_DEFAULT
    # a remembered choice that is no candidate here (say, the route failed its proof): anew
    assert speed.remembered_choice(cache, "a", [FAST_DEFAULT], measure(FAST_DEFAULT))[0] == (
        FAST_DEFAULT
    )
    assert calls == [FAST_ONEDNN, FAST_DEFAULT, FAST_DEFAULT]


def test_a_choice_measured_in_another_arithmetic_is_measured_anew(tmp_path, monkeypatch):
    measured = []
    choose = speed.choose_training
    monkeypatch.setattr(speed, "choose_training", lambda *a: measured.append(1) or choose(*a))
    x_train, x_test, cache = images(300), images(50, seed=1), tmp_path / "choices.json"

    def run(name):
        training.train(
            hparams(epochs=1), x_train, labels(300), x_test, tmp_path / name, CPU,
            choice_cache=cache,
        )  # fmt: skip

    run("first")
    run("again")  # the same machine, shapes and arithmetic: remembered
    assert len(measured) == 1
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # another MKL mode: other speeds, other bits
    run("other")
    assert len(measured) == 2


def test_threads_that_follow_the_free_cpus_change_no_bit(tmp_path, monkeypatch, caplog):
    # The last training job of a study, alone, may take the CPUs its finished peers held: only
    # where more threads are proven to give the same weights and losses, so a run's result never
    # depends on what else was running.
    x, x_test = images(512), images(128, seed=1)
    hp = hparams(epochs=3)
    torch.set_num_threads(1)
    kept, kept_history = train(hp, x, x_test, tmp_path / "kept.pt", CPU)

    class NothingElseRuns:  # other processes leave every CPU free
        def __call__(self):
            return 0.0

    monkeypatch.setattr(training, "OtherLoad", NothingElseRuns)
    monkeypatch.setattr(training, "usable_cpus", lambda: 2)
    with caplog.at_level(logging.INFO, logger="aedepth.train"):
        followed, followed_history, _ = training.train(
            hp, x, labels(len(x)), x_test, tmp_path / "followed.pt", CPU, max_threads=2
        )
    assert torch.get_num_threads() == 1  # restored after training
    proven = "threads follow the free CPUs, 1 to 2" in caplog.text
    assert proven or "threads stay at 1: 2 threads give other bits here" in caplog.text
    if proven:
        assert "epoch 2 on 2 thread(s)" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(),
                                                 followed.state_dict().values()))  # fmt: skip
    assert [row["train_loss"] for row in followed_history] == [
        row["train_loss"] for row in kept_history
    ]
    assert [row["test_loss"] for row in followed_history] == [
        row["test_loss"] for row in kept_history
    ]


def test_a_computation_that_changes_with_the_threads_is_caught():
    def sums_split_by_thread():
        # a reduction whose order follows the thread count (as a full .sum() of a large tensor)
        parts = torch.arange(1.0, 1e6).split(1_000_000 // torch.get_num_threads())
        return [torch.stack([part.float().sum() for part in parts]).sum()]

    torch.set_num_threads(1)
    assert speed.bit_identical_across_threads(lambda: [torch.ones(3) * 2], (1, 2))
    assert not speed.bit_identical_across_threads(sums_split_by_thread, (1, 2))
    assert torch.get_num_threads() == 1


def run_fresh(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """stdout of `code` in a new interpreter (its own compute threads) in `cwd`, aedepth
    importable; `env` instead of this process's environment."""
    scripts = Path(training.__file__).parents[1]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(scripts)!r})\n{code}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
    )
    return result.stdout.strip()


# Every matmul of a depth-3 training step of the study (forward, weight and input gradient
# of each layer), at 1 and at 2 threads: whether all agree bit for bit, and MKL's mode.
SAME_BITS_ON_ANY_THREADS = """
import os, torch
import aedepth
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
print(same, os.environ["MKL_CBWR"])
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
    "each training job's own check decides whether its threads may change",
)
def test_matmuls_give_the_same_bits_on_any_thread_count(tmp_path):
    # importing aedepth puts MKL in its strict reproducible mode before the first matmul:
    # without it, MKL splits some of these sums by thread (on an Intel Xeon: 784x500 dgrad)
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    assert run_fresh(SAME_BITS_ON_ANY_THREADS, tmp_path, env) == "True AUTO,STRICT"


def test_a_users_own_mkl_mode_is_kept(tmp_path):
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    assert run_fresh(SAME_BITS_ON_ANY_THREADS, tmp_path, env).endswith(" COMPATIBLE")


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


@pytest.mark.skipif(usable_cpus() < 2, reason="needs 2 CPUs for 2 compute threads")
def test_threads_that_do_not_flush_subnormals_keep_a_job_on_its_threads(tmp_path):
    # a compute thread started before the flush keeps IEEE subnormals: late in training it
    # would give other bits, so the job must not take it even where every other output of
    # the check agrees (MKL's strict mode makes the matmuls agree)
    out = run_fresh(
        "import torch\n"
        "from aedepth import speed, train as t\n"
        "from aedepth.model import Autoencoder\n"
        "torch.set_num_threads(2)\n"
        "torch.rand(512, 512) @ torch.rand(512, 512)\n"  # starts the second thread unflushed
        "torch.set_flush_denormal(True)\n"  # this thread only
        "torch.set_num_threads(1)\n"
        "m = Autoencoder([16], 2)\n"
        "o = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)\n"
        "make = lambda mm, oo: speed.fast_step(mm, oo, torch.device('cpu'))\n"
        "images = torch.randint(0, 256, (64, 784), dtype=torch.uint8)\n"
        "follow = t._threads_for_free_cpus(\n"
        "    2, torch.device('cpu'), 'default', make, m, o, torch.rand(32, 784), images)\n"
        "print(follow is None)",
        tmp_path,
    )
    assert out == "True"
