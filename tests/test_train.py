"""Unit tests of the training loop: learning, exact resume, divergence, fp32 numerics."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from aedepth import train as training
from aedepth.model import Autoencoder
from aedepth.train import (
    HISTORY_COLUMNS,
    TrainingDiverged,
    adam_step,
    fp32_matmuls,
    layer_shapes,
    layers_of,
    loss_and_gradients,
    mean_bce,
    train,
)

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
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    x_train, x_test = images(300), images(50, seed=1)  # 300 = 4 full batches + 44
    whole_model, whole = train(hparams(), x_train, x_test, tmp_path / "whole", CPU)

    with pytest.raises(Stop):
        train(hparams(), x_train, x_test, tmp_path / "split", CPU, progress=stop_after(1))
    assert (tmp_path / "split").exists()
    resumed_model, resumed = train(hparams(), x_train, x_test, tmp_path / "split", CPU)

    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop_time(resumed) == drop_time(whole)
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


def test_a_checkpoint_with_other_hparams_is_not_resumed(tmp_path):
    x_train, x_test = images(200), images(50, seed=1)
    train(hparams(epochs=1), x_train, x_test, tmp_path / "ckpt", CPU)
    _, history = train(
        hparams(epochs=2, learning_rate=2e-3), x_train, x_test, tmp_path / "ckpt", CPU
    )
    assert [row["epoch"] for row in history] == [1, 2]


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
    logits = model(x)
    # autograd below the logits, fed the closed-form gradient of the mean BCE above them
    logits.backward((torch.sigmoid(logits.detach()) - x).mul_(1 / x.numel()))
    for name, param in model.named_parameters():
        assert torch.equal(ours[name], param.grad), name
    expected = F.binary_cross_entropy_with_logits(logits.detach().double(), x.double())
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
        and training._cpu_has_amx() is False
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

    monkeypatch.setattr(training.F, "linear", bf16_linear)
    monkeypatch.setattr(training, "_exact_shapes", {})
    monkeypatch.setattr(training, "_cpu_has_amx", lambda: False)
    with fp32_matmuls(CPU, STUDY_LAYERS, train_rows={128}) as route:
        assert route == "default"
        assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"


def test_cpus_with_amx_never_take_the_bf16_setting(monkeypatch):
    monkeypatch.setattr(training, "_cpu_has_amx", lambda: True)
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


def test_early_stopping_keeps_the_best_weights(tmp_path, monkeypatch):
    # Validation losses that get worse after epoch 2: training stops after epoch 4 and the
    # returned model holds the weights of epoch 2.
    fake_losses = iter([0.30, 0.20, 0.25, 0.26, 0.27, 0.28])
    monkeypatch.setattr(training, "mean_bce", lambda model, images: next(fake_losses))
    checkpoint = tmp_path / "ckpt"
    saved = {}

    def remember(epochs):  # the weights of each finished epoch, from its checkpoint
        for epoch in epochs:
            yield epoch
            saved[epoch] = torch.load(checkpoint, weights_only=True)["model"]

    model, history = train(
        hparams(epochs=6, early_stopping_patience=2),
        images(64),
        images(16, seed=1),
        checkpoint,
        CPU,
        progress=remember,
    )
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
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
