"""One flat training loop, its backward pass written out; atomic checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aedepth.files import atomic_output
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder, build_model, to_unit

log = logging.getLogger("aedepth.train")

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds")
EVAL_CHUNK = 1024  # rows per evaluation pass: keeps the loss's elementwise work in cache


class TrainingDiverged(UserFacingError):
    """The loss stopped being finite."""


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserFacingError(
            "device: cuda was requested but no CUDA GPU is visible; use device: auto or cpu"
        )
    return torch.device(requested)


def flatten_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 784) uint8 tensor on `device`; scaled to [0, 1] per batch.

    Keeping uint8 on the device holds the whole training set in a quarter of the memory.
    """
    return torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1)).to(device)


# --- fp32 matmuls at the speed of the CPU ----------------------------------------------------
# On CPUs torch sends fp32 matmuls to MKL, which takes its AVX2 path on AMD (about half of what
# the hardware can do). oneDNN has AVX-512 fp32 kernels, and torch routes fp32 matmuls there only
# when torch.backends.mkldnn.matmul.fp32_precision = "bf16", which *allows* oneDNN to compute in
# bf16. oneDNN uses that allowance only on CPUs with AMX; elsewhere it runs its fp32 kernels.
# The numerics must never change with the machine, so the route is taken only where it is
# proven exact: no AMX on the CPU, and every matmul shape of the run (forward and both backward
# products, as autograd calls them) agrees with a float64 reference to fp32 accuracy. Anywhere
# else (AMX, non-Linux, a shape that fails, ...) training stays on torch's default fp32 path.
# (torch.backends.mkldnn.matmul.fp32_precision = "tf32" is not an fp32 route either: it
# computes in tf32 on CPUs with AMX-FP16, and is a slow path elsewhere.)

# Relative error (to the largest |entry|) an fp32 product stays far below; bf16 or tf32
# products land near 1e-3 / 1e-4.
_FP32_TOLERANCE = 1e-5
_exact_shapes: dict[tuple[int, int, int], bool] = {}


def _cpu_has_amx() -> bool | None:
    """Whether the CPU has AMX tiles (where oneDNN really computes in bf16); None: unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((line for line in text.splitlines() if line.startswith("flags")), None)
    if flags is None:
        return None
    return any(flag.startswith("amx") for flag in flags.split(":", 1)[1].split())


def _spread(n: int) -> torch.Tensor:
    """Up to 8 indices spread over range(n), first and last included (kernels' tails)."""
    return torch.linspace(0, n - 1, 8).round().long().unique()


def _linear_is_fp32_exact(rows: int, n_in: int, n_out: int, backward: bool) -> bool:
    """F.linear (rows, n_in) -> (rows, n_out), and its backward, agree with float64.

    The fp32 products run at full shape (oneDNN picks kernels by shape); the float64
    reference is computed for a spread of their entries only, so the probe costs little.
    """
    key = (rows, n_in, n_out, backward)
    if key not in _exact_shapes:
        probe = torch.Generator().manual_seed(0)

        def values(*shape):  # uniform in [-1, 1); rows past 256 repeat (random numbers are slow)
            block = torch.empty(min(shape[0], 256), *shape[1:]).uniform_(-1, 1, generator=probe)
            return block.repeat(-(-shape[0] // len(block)), *[1] * (len(shape) - 1))[: shape[0]]

        x, weight, bias, grad = (
            values(rows, n_in),
            values(n_out, n_in),
            values(n_out),
            values(rows, n_out),
        )
        with torch.enable_grad():
            x.requires_grad_(backward)
            weight.requires_grad_(backward)
            out = F.linear(x, weight, bias)
            if backward:
                out.backward(grad)
        grad_x, grad_weight = x.grad, weight.grad
        x, weight, out = x.detach(), weight.detach(), out.detach()
        r, i, o = _spread(rows), _spread(n_in), _spread(n_out)
        pairs = [(out[r][:, o], x[r].double() @ weight[o].double().T + bias[o].double())]
        if backward:
            pairs += [
                (grad_x[r][:, i], grad[r].double() @ weight[:, i].double()),
                (grad_weight[o][:, i], grad[:, o].double().T @ x[:, i].double()),
            ]
        _exact_shapes[key] = all(
            ((ours.double() - ref).abs().max() <= _FP32_TOLERANCE * ref.abs().max()).item()
            for ours, ref in pairs
        )
    return _exact_shapes[key]


def layer_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """(in_features, out_features) of every Linear layer of `model`."""
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


@contextlib.contextmanager
def fp32_matmuls(
    device: torch.device,
    layers: list[tuple[int, int]],
    train_rows: set[int],
    eval_rows: set[int] = frozenset(),
):
    """Within the block, run fp32 matmuls on the fastest route proven exact in fp32 here.

    `layers` are (in, out) of the Linear layers; `train_rows` every batch size they are
    trained with (forward and backward), `eval_rows` every one they only run forward.
    Yields the route's name: "onednn-fp32", "cuda-fp32" (TF32 off), or "default" (torch's own
    kernels, strict fp32).
    """
    if device.type == "cuda":
        cublas = torch.backends.cuda.matmul
        previous = cublas.fp32_precision
        cublas.fp32_precision = "ieee"  # fp32 everywhere: never TF32 on tensor cores
        try:
            yield "cuda-fp32"
        finally:
            cublas.fp32_precision = previous
        return
    matmul = torch.backends.mkldnn.matmul
    previous = matmul.fp32_precision
    route = "default"
    matmul.fp32_precision = "ieee"  # strict fp32, whatever was set before
    if (
        device.type == "cpu"
        and platform.system() == "Linux"
        and torch.backends.mkldnn.is_available()
        and _cpu_has_amx() is False
    ):
        matmul.fp32_precision = "bf16"
        probes = [(rows, True) for rows in train_rows] + [(rows, False) for rows in eval_rows]
        if (
            probes
            and layers
            and all(
                _linear_is_fp32_exact(rows, n_in, n_out, backward)
                for rows, backward in sorted(probes)
                for n_in, n_out in layers
            )
        ):
            route = "onednn-fp32"
        else:
            matmul.fp32_precision = "ieee"
    try:
        yield route
    finally:
        matmul.fp32_precision = previous


def _bce_sum(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed binary cross-entropy of sigmoid(logits) against `target` in fp32, and the sigmoid.

    softplus(z) - target*z = relu(z) - target*z - log(max(s, 1 - s)) with s = sigmoid(z): the
    log only sees values in [0.5, 1], where it is well conditioned, and s is what the gradient
    needs anyway. torch's own BCE-with-logits goes through log1p, which has no vectorised CPU
    kernel; torch.dot is avoided too, since on the oneDNN route it is 10x slower than mul+sum.
    """
    probabilities = torch.sigmoid(logits)
    total = (
        torch.addcmul(F.relu(logits), logits, target, value=-1)
        .sub_(torch.maximum(probabilities, 1 - probabilities).log_())
        .sum()
    )
    return total, probabilities


# The activations of the model, each as (in-place forward, backward from its output): the
# kernels autograd's SigmoidBackward/TanhBackward nodes call.
_ACTIVATIONS = {
    nn.Sigmoid: (torch.sigmoid_, torch.ops.aten.sigmoid_backward),
    nn.Tanh: (torch.tanh_, torch.ops.aten.tanh_backward),
}


def layers_of(model: Autoencoder) -> list[tuple[nn.Linear, nn.Module | None]]:
    """(Linear layer, the activation module after it or None) for every layer, input first."""
    modules = [*model.encoder, *model.decoder]
    layers = []
    for linear, after in zip(modules, [*modules[1:], None]):
        if isinstance(linear, nn.Linear):
            activation = None if isinstance(after, nn.Linear) else after
            if activation is not None and type(activation) not in _ACTIVATIONS:
                raise TypeError(f"no backward written for {type(activation).__name__}")
            layers.append((linear, activation))
    return layers


# oneDNN spends about 10 us setting up each matmul, torch's default route about 3 us: for a
# layer with fewer weights than this (into and out of a small latent code, e.g. 100 x 2) the
# set-up is most of the work, so its matmuls take the default route (strict fp32, "ieee").
SMALL_LAYER_WEIGHTS = 4096


@torch.no_grad()
def loss_and_gradients(
    layers: list[tuple[nn.Linear, nn.Module | None]], x: torch.Tensor
) -> torch.Tensor:
    """Mean per-pixel BCE of the model's reconstruction of x, where `layers` is
    layers_of(model); the loss's gradient lands in each parameter's .grad.

    This is `loss.backward()` written out for the MLP: the same kernels on the same operands
    in the same order, so the gradients are bit-identical to autograd's on the same matmul
    route (a test checks), but without autograd's per-node bookkeeping, transposed views and
    fresh gradient tensors: about 10 % of a CPU training step. The loss gradient is the
    closed form (sigmoid(logits) - x) / n in one pass; the first layer's input gets none.
    """
    matmul = torch.backends.mkldnn.matmul
    route = matmul.fp32_precision  # as fp32_matmuls set it
    precisions = [
        route if linear.weight.numel() >= SMALL_LAYER_WEIGHTS else "ieee" for linear, _ in layers
    ]
    inputs = []  # each layer's input, kept for its backward (as autograd keeps them)
    h = x
    try:
        for (linear, activation), precision in zip(layers, precisions):
            inputs.append(h)
            matmul.fp32_precision = precision
            h = torch.addmm(linear.bias, h, linear.weight.t())
            if activation is not None:
                h = _ACTIVATIONS[type(activation)][0](h)
        total, probabilities = _bce_sum(h, x)
        grad = probabilities.sub_(x).mul_(1 / x.numel())  # d loss / d logits
        for i in reversed(range(len(layers))):
            linear, _ = layers[i]
            matmul.fp32_precision = precisions[i]
            for param in (linear.weight, linear.bias):
                if param.grad is None:
                    param.grad = torch.empty_like(param)
            torch.mm(grad.t(), inputs[i], out=linear.weight.grad)
            torch.sum(grad, 0, out=linear.bias.grad)
            if i > 0:
                grad = grad.mm(linear.weight)
                _, activation = layers[i - 1]
                if activation is not None:
                    grad = _ACTIVATIONS[type(activation)][1](grad, inputs[i])
    finally:
        matmul.fp32_precision = route
    return total / x.numel()


@torch.no_grad()
def mean_bce(model: Autoencoder, images: torch.Tensor, chunk: int = EVAL_CHUNK) -> float:
    """Per-pixel binary cross-entropy of the reconstructions, averaged over `images`."""
    model.eval()
    total = 0.0
    for start in range(0, len(images), chunk):
        x = to_unit(images[start : start + chunk])
        total += _bce_sum(model(x), x)[0].item()
    return total / images.numel()


def adam_step(optimizer: torch.optim.Adam) -> None:
    """optimizer.step() of a fused Adam, without its per-call Python work.

    Optimizer.step regroups the parameters and rebuilds its state lists on every call: about
    0.13 ms, 4 % of a CPU training step of the study. This calls the same fused kernel on the
    optimizer's own state, so results, checkpoints and resume are unchanged (a test checks
    bit equality with optimizer.step()). The first call, which creates the state, and any
    configuration this does not cover go through optimizer.step().
    """
    (group,) = optimizer.param_groups
    params = group["params"]
    state = [optimizer.state.get(p) for p in params]
    if (
        not all(state)
        or any(p.grad is None for p in params)
        or not group["fused"]
        or group["amsgrad"]
        or group["maximize"]
        or group["decoupled_weight_decay"]
        or isinstance(group["lr"], torch.Tensor)
    ):
        optimizer.step()
        return
    steps = [s["step"] for s in state]
    # adding a list of tensors: with a plain 1, foreach falls back to one add per tensor (3x slower)
    torch._foreach_add_(steps, [torch.ones((), device=steps[0].device)] * len(steps))
    beta1, beta2 = group["betas"]
    torch._fused_adam_(
        params,
        [p.grad for p in params],
        [s["exp_avg"] for s in state],
        [s["exp_avg_sq"] for s in state],
        [],
        steps,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        amsgrad=False,
        maximize=False,
    )


def _row_counts(rows: int, chunk: int) -> set[int]:
    """The row counts of the slices [0:chunk], [chunk:2*chunk], ... of `rows` rows."""
    return {count for count in (min(chunk, rows), rows % chunk) if count}


def kept_epoch(val_losses: list[float], patience: int) -> int:
    """The epoch (1-based) whose weights a run keeps: the last one, or with early stopping
    (patience > 0) the one with the lowest validation loss (the first of equals)."""
    if patience <= 0 or not val_losses:
        return len(val_losses)
    return int(np.argmin(val_losses)) + 1


def should_stop(val_losses: list[float], patience: int) -> bool:
    """Early stopping: `patience` epochs have passed without a better validation loss."""
    return patience > 0 and len(val_losses) - kept_epoch(val_losses, patience) >= patience


def train(
    hparams: dict,
    x_train: np.ndarray,
    x_test: np.ndarray,
    checkpoint_path: str | Path,
    device: torch.device,
    progress=None,
) -> tuple[Autoencoder, list[dict]]:
    """Train per `hparams`, resuming from `checkpoint_path` when it holds the same hparams.

    A checkpoint (weights, best weights, optimizer, shuffling RNG state, history, hparams) is
    written atomically after every epoch, so a killed job resumes and ends bit-identical to an
    uninterrupted run on the same device. With early_stopping_patience > 0 training stops once
    that many epochs bring no better validation loss, and the best epoch's weights are kept.
    Returns the model and its per-epoch history.
    """
    checkpoint_path = Path(checkpoint_path)
    torch.manual_seed(hparams["seed"])  # the one place seeds are set: weight init
    model = build_model(hparams).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams["learning_rate"], fused=True)
    shuffle = torch.Generator(device=device).manual_seed(hparams["seed"])
    history: list[dict] = []
    best_model = None  # weights of the epoch kept_epoch() names, so far

    if checkpoint_path.exists():
        # Loaded to CPU: load_state_dict moves tensors to the model's device, and RNG
        # states must stay CPU byte tensors.
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if state["hparams"] == hparams:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            shuffle.set_state(state["shuffle_rng"])
            history, best_model = state["history"], state["best_model"]
            log.info("resuming from %s after epoch %d", checkpoint_path, len(history))
        else:
            log.info("ignoring %s: it was made with other hyperparameters", checkpoint_path)

    train_images = flatten_images(x_train, device)
    test_images = flatten_images(x_test, device)
    batch_size, patience = hparams["batch_size"], hparams.get("early_stopping_patience", 0)
    layers = layers_of(model)
    epochs = range(len(history) + 1, hparams["epochs"] + 1)
    with fp32_matmuls(
        device,
        layer_shapes(model),
        train_rows=_row_counts(len(train_images), batch_size),
        eval_rows=_row_counts(len(test_images), EVAL_CHUNK),
    ) as route:
        log.info("fp32 matmul route: %s, %d thread(s)", route, torch.get_num_threads())
        for epoch in progress(epochs) if progress else epochs:
            if should_stop([row["val_loss"] for row in history], patience):
                log.info(
                    "early stopping after epoch %d: no better validation loss in %d epochs",
                    len(history),
                    patience,
                )
                break
            started = time.perf_counter()
            model.train()
            order = torch.randperm(len(train_images), generator=shuffle, device=device)
            bce_sum = torch.zeros((), device=device)  # summed on the device: no sync per batch
            for start in range(0, len(order), batch_size):
                # index_select copies whole rows; images[indices] goes element by element
                x = to_unit(torch.index_select(train_images, 0, order[start : start + batch_size]))
                loss = loss_and_gradients(layers, x)
                adam_step(optimizer)
                bce_sum += loss * x.numel()
            train_loss = bce_sum.item() / train_images.numel()
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"training loss became {train_loss} in epoch {epoch}: "
                    "lower learning_rate (or batch_size) and run again"
                )
            val_loss = mean_bce(model, test_images)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "seconds": time.perf_counter() - started,
                }
            )
            log.info(
                "epoch %d/%d train %.5f val %.5f (%.2f s)",
                epoch,
                hparams["epochs"],
                train_loss,
                val_loss,
                history[-1]["seconds"],
            )
            val_losses = [row["val_loss"] for row in history]
            if patience > 0 and kept_epoch(val_losses, patience) == epoch:
                best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
            with atomic_output(checkpoint_path) as tmp:
                torch.save(
                    {
                        "model": model.state_dict(),
                        "best_model": best_model,
                        "optimizer": optimizer.state_dict(),
                        "shuffle_rng": shuffle.get_state(),
                        "history": history,
                        "hparams": hparams,
                    },
                    tmp,
                )
    if patience > 0:  # keep the weights of the best validation epoch
        model.load_state_dict(best_model)
    model.zero_grad(set_to_none=True)
    return model.eval(), history
