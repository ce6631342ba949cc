"""The CPU speed path of training: each piece replaces a step of the plain loop in train.py
with the same arithmetic, minus Python and autograd overhead; tests prove it bit-identical.

- `exact_routes` / `matmul_route`: the fp32 matmul routes proven exact here (torch's default,
  oneDNN's fp32 kernels where a float64 probe proves them), and switching to one;
- `training_route`: the route a run trains on, a fixed rule of its config (`matmul_route`)
  and the hardware class, never a timing;
- `loss_and_gradients`: `loss.backward()` written out for the MLP autoencoder;
- `adam_step`: the fused Adam kernel called directly, without `Optimizer.step`'s regrouping;
- `bce_sum`: the summed BCE with logits from vectorised kernels only.

`fast_step` hands train.py the written-out step where it supports the model, the optimizer,
the device and this torch's private functions; anywhere else it returns None, and says why
in one log line, and training takes the plain loop (the same bits, slower).
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aedepth.hardware import cpu_info
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder

log = logging.getLogger("aedepth.speed")

# Private torch functions the fast step calls, looked up once; None where this torch lacks one.
_fused_adam_ = getattr(torch, "_fused_adam_", None)
_foreach_add_ = getattr(torch, "_foreach_add_", None)
_sigmoid_backward = getattr(torch.ops.aten, "sigmoid_backward", None)
_tanh_backward = getattr(torch.ops.aten, "tanh_backward", None)


def _missing_private_functions() -> list[str]:
    found = {
        "torch._fused_adam_": _fused_adam_,
        "torch._foreach_add_": _foreach_add_,
        "torch.ops.aten.sigmoid_backward": _sigmoid_backward,
        "torch.ops.aten.tanh_backward": _tanh_backward,
    }
    return [name for name, function in found.items() if function is None]


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
_exact_shapes: dict[tuple[int, int, int, bool], bool] = {}


def _cpu_has_amx() -> bool | None:
    """Whether the CPU has AMX tiles (where oneDNN really computes in bf16); None: unknown."""
    _, flags = cpu_info()
    return ("amx_tile" in flags) if flags else None


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


def exact_routes(
    device: torch.device,
    layers: list[tuple[int, int]],
    train_rows: set[int],
    eval_rows: set[int] = frozenset(),
) -> list[str]:
    """The fp32 matmul routes proven exact on this machine for these shapes, default first.

    `layers` are (in, out) of the Linear layers; `train_rows` every batch size they are
    trained with (forward and backward), `eval_rows` every one they only run forward.
    Routes: "default" (torch's own kernels, strict fp32), "onednn-fp32" (oneDNN's fp32
    kernels; only without AMX and after the float64 probe of every shape), "cuda-fp32"
    (TF32 off; the only route on a GPU).
    """
    if device.type == "cuda":
        return ["cuda-fp32"]
    routes = ["default"]
    if not (
        device.type == "cpu"
        and platform.system() == "Linux"
        and torch.backends.mkldnn.is_available()
        and _cpu_has_amx() is False
    ):
        return routes
    probes = [(rows, True) for rows in train_rows] + [(rows, False) for rows in eval_rows]
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "bf16"
    try:
        exact = (
            probes
            and layers
            and all(
                _linear_is_fp32_exact(rows, n_in, n_out, backward)
                for rows, backward in sorted(probes)
                for n_in, n_out in layers
            )
        )
    finally:
        matmul.fp32_precision = previous
    return routes + ["onednn-fp32"] if exact else routes


@contextlib.contextmanager
def matmul_route(route: str):
    """Within the block, fp32 matmuls take `route` (one of exact_routes' names)."""
    if route == "cuda-fp32":
        cublas = torch.backends.cuda.matmul
        previous = cublas.fp32_precision
        cublas.fp32_precision = "ieee"  # fp32 everywhere: never TF32 on tensor cores
        try:
            yield route
        finally:
            cublas.fp32_precision = previous
        return
    matmul = torch.backends.mkldnn.matmul
    previous = matmul.fp32_precision
    # "ieee": strict fp32, whatever was set before; "bf16" sends fp32 matmuls to oneDNN,
    # which computes in fp32 where exact_routes proved it
    matmul.fp32_precision = {"default": "ieee", "onednn-fp32": "bf16"}[route]
    try:
        yield route
    finally:
        matmul.fp32_precision = previous


# oneDNN's AVX-512 fp32 kernels beat MKL's AVX2 branch, which MKL takes on AMD CPUs, where the
# CPU has AVX-512 (measured: Zen 4 +10 % at the 2048^3 peak, Zen 5 2x); MKL wins on Intel CPUs
# (Ice Lake: 243 against 206-222 GFLOP/s) and on AMD CPUs without AVX-512 (Zen 3).


def training_route(
    requested: str,
    device: torch.device,
    layers: list[tuple[int, int]],
    train_rows: set[int],
    eval_rows: set[int] = frozenset(),
) -> str:
    """The fp32 matmul route a run trains on: a fixed rule of the config's `matmul_route`
    and the hardware class, so one config trains one way on every machine of a class.

    "default": torch's default route; "onednn": oneDNN's fp32 kernels, refused in one line
    where exact_routes does not prove them exact here; "auto": oneDNN on AMD CPUs with
    AVX-512 where proven exact, else the default route. On a GPU: "cuda-fp32".
    """
    if device.type == "cuda":
        return "cuda-fp32"
    if requested == "default":
        return "default"
    vendor, flags = cpu_info()
    if requested == "auto" and not (vendor == "AuthenticAMD" and "avx512f" in flags):
        return "default"
    if "onednn-fp32" in exact_routes(device, layers, train_rows, eval_rows):
        return "onednn-fp32"
    if requested == "onednn":
        raise UserFacingError(
            "matmul_route: onednn is not proven fp32-exact on this machine (a CPU with AMX, "
            "no oneDNN, or a shape that failed the float64 probe): set matmul_route: auto"
        )
    return "default"


# --- the loss --------------------------------------------------------------------------------


def bce_sum(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed binary cross-entropy of sigmoid(logits) against `target` in fp32, and the sigmoid.

    softplus(z) - target*z = relu(z) - target*z - log(max(s, 1 - s)) with s = sigmoid(z): the
    log only sees values in [0.5, 1], where it is well conditioned, and s is what the gradient
    needs anyway. torch's own BCE-with-logits goes through log1p, which has no vectorised CPU
    kernel on some builds; torch.dot is avoided too, since on the oneDNN route it is 10x slower
    than mul+sum. Public operations only.
    """
    probabilities = torch.sigmoid(logits)
    total = (
        torch.addcmul(F.relu(logits), logits, target, value=-1)
        .sub_(torch.maximum(probabilities, 1 - probabilities).log_())
        .sum(0)  # per column first: unlike a full .sum(), the order does not follow the threads
        .sum()
    )
    return total, probabilities


# --- the backward pass, written out ----------------------------------------------------------

# The activations the written-out backward supports, each as (in-place forward, backward from
# its output): the kernels autograd's SigmoidBackward/TanhBackward nodes call.
_ACTIVATIONS = {
    nn.Sigmoid: (torch.sigmoid_, _sigmoid_backward),
    nn.Tanh: (torch.tanh_, _tanh_backward),
}


def layers_of(model: nn.Module) -> list[tuple[nn.Linear, nn.Module | None]]:
    """(Linear layer, the activation module after it or None) for every layer, input first.

    Raises TypeError for a model the written-out backward does not cover: anything but an
    Autoencoder whose encoder and decoder are Linear layers, each followed by at most one
    Sigmoid or Tanh.
    """
    if type(model) is not Autoencoder:
        raise TypeError(f"no backward written for {type(model).__name__}")
    layers: list[tuple[nn.Linear, nn.Module | None]] = []
    for module in [*model.encoder, *model.decoder]:
        if type(module) is nn.Linear:
            layers.append((module, None))
        elif type(module) in _ACTIVATIONS and layers and layers[-1][1] is None:
            layers[-1] = (layers[-1][0], module)
        else:
            raise TypeError(f"no backward written for {type(module).__name__} here")
    return layers


# oneDNN spends about 10 us setting up each matmul, torch's default route about 3 us: for a
# layer with fewer weights than this (into and out of a small latent code, e.g. 100 x 2) the
# set-up is most of the work, so its matmuls take the default route (strict fp32, "ieee").
SMALL_LAYER_WEIGHTS = 4096


def layer_precision(route_precision: str, weights: int) -> str:
    """The fp32_precision a layer's matmuls take on a route: small layers strict fp32."""
    return route_precision if weights >= SMALL_LAYER_WEIGHTS else "ieee"


@torch.no_grad()
def loss_and_gradients(
    layers: list[tuple[nn.Linear, nn.Module | None]], x: torch.Tensor
) -> torch.Tensor:
    """Mean per-pixel BCE of the model's reconstruction of x, where `layers` is
    layers_of(model); the loss's gradient lands in each parameter's .grad.

    This is `F.binary_cross_entropy_with_logits(model(x), x).backward()` written out: the same
    kernels on the same operands in the same order, so the gradients are bit-identical to
    autograd's on the same matmul route (a test checks), but without autograd's per-node
    bookkeeping, transposed views and fresh gradient tensors: about 10 % of a CPU training
    step. The loss gradient is ATen's (sigmoid(logits) - x) / n; the first layer's input gets
    none.
    """
    matmul = torch.backends.mkldnn.matmul
    route = matmul.fp32_precision  # as fp32_matmuls set it
    precisions = [layer_precision(route, linear.weight.numel()) for linear, _ in layers]
    inputs = []  # each layer's input, kept for its backward (as autograd keeps them)
    h = x
    try:
        for (linear, activation), precision in zip(layers, precisions):
            inputs.append(h)
            matmul.fp32_precision = precision
            h = torch.addmm(linear.bias, h, linear.weight.t())
            if activation is not None:
                h = _ACTIVATIONS[type(activation)][0](h)
        total, probabilities = bce_sum(h, x)
        # d loss / d logits, as binary_cross_entropy_with_logits_backward computes it: a
        # division by n (multiplying by 1 / n would round differently)
        grad = probabilities.sub_(x).div_(x.numel())
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


# --- the optimizer step, called directly -----------------------------------------------------


def _optimizer_not_covered(optimizer: torch.optim.Optimizer, model: nn.Module) -> str | None:
    """Why adam_step cannot stand in for `optimizer.step()`, or None."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return "the optimizer is not one torch.optim.Adam parameter group"
    group = optimizer.param_groups[0]
    settings = ("amsgrad", "maximize", "decoupled_weight_decay", "capturable", "differentiable")
    if not group["fused"] or any(group.get(name) for name in settings):
        return "the optimizer is not a plain fused Adam"
    if isinstance(group["lr"], torch.Tensor):
        return "the optimizer's learning rate is a tensor"
    if {id(p) for p in group["params"]} != {id(p) for p in model.parameters()}:
        return "the optimizer does not hold exactly the model's parameters"
    return None


def adam_step(optimizer: torch.optim.Adam) -> None:
    """optimizer.step() of a fused Adam, without its per-call Python work.

    Optimizer.step regroups the parameters and rebuilds its state lists on every call: about
    0.13 ms, 4 % of a CPU training step of the study. This calls the same fused kernel on the
    optimizer's own state, so results, checkpoints and resume are unchanged (a test checks
    bit equality with optimizer.step()). The first call, which creates the state, goes
    through optimizer.step(). Only for optimizers fast_step accepts.
    """
    (group,) = optimizer.param_groups
    params = group["params"]
    state = [optimizer.state.get(p) for p in params]
    if not all(state):
        optimizer.step()
        return
    steps = [s["step"] for s in state]
    # adding a list of tensors: with a plain 1, foreach falls back to one add per tensor (3x slower)
    _foreach_add_(steps, [torch.ones((), device=steps[0].device)] * len(steps))
    beta1, beta2 = group["betas"]
    _fused_adam_(
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


# --- the step ------------------------------------------------------------------------------


def fast_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The written-out training step, `step(x) -> mean loss` with x a batch of intensities,
    or None where it does not apply (one log line says why): then train.py's plain step,
    which it replaces bit for bit, runs instead."""
    reason = None
    missing = _missing_private_functions()
    if device.type != "cpu":
        reason = f"it is proven on CPUs only, not on {device.type}"
    elif missing:
        reason = f"torch {torch.__version__} lacks {', '.join(missing)}"
    else:
        try:
            layers = layers_of(model)
        except TypeError as error:
            reason = str(error)
        else:
            reason = _optimizer_not_covered(optimizer, model)
    if reason is not None:
        log.info("speed path off: %s; using the plain loop", reason)
        return None

    def step(x: torch.Tensor) -> torch.Tensor:
        loss = loss_and_gradients(layers, x)
        adam_step(optimizer)
        return loss

    return step
