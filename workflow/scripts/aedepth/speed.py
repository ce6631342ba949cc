"""The CPU speed path of training: each piece replaces a step of the plain loop in train.py
with the same arithmetic, minus Python and autograd overhead; tests prove it bit-identical.

- `exact_routes` / `matmul_route`: the fp32 matmul routes proven exact here (torch's default,
  oneDNN's fp32 kernels where a float64 probe proves them), and switching to one;
- `loss_and_gradients`: `loss.backward()` written out for the MLP autoencoder;
- `adam_step`: the fused Adam kernel called directly, without `Optimizer.step`'s regrouping;
- `bce_sum`: the summed BCE with logits from vectorised kernels only.

`fast_step` hands train.py the written-out step where it supports the model, the optimizer,
the device and this torch's private functions; anywhere else it returns None, and says why
in one log line, and training takes the plain loop.

`choose_training` times a few steps of every candidate (path x exact route) on the run's
own batch shape and picks the fastest: which one wins depends on the CPU (oneDNN beats MKL
on AVX-512 AMD parts, loses on Ice Lake and Zen 3), so it is measured, never assumed.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

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


@contextlib.contextmanager
def fp32_matmuls(
    device: torch.device,
    layers: list[tuple[int, int]],
    train_rows: set[int],
    eval_rows: set[int] = frozenset(),
):
    """Within the block, fp32 matmuls take the oneDNN route where it is proven exact for
    these shapes (see exact_routes), else torch's default (strict fp32). Yields the route's
    name. (Training does not use this preference: it measures; see choose_training.)"""
    with matmul_route(exact_routes(device, layers, train_rows, eval_rows)[-1]) as route:
        yield route


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


# --- threads that follow the free CPUs -------------------------------------------------------


def bit_identical_across_threads(
    run: Callable[[], list[torch.Tensor]], thread_counts: tuple[int, ...]
) -> bool:
    """Whether `run()` (a few training steps and an evaluation from fixed weights) returns
    bit-identical tensors at every thread count of `thread_counts`. Where it does, a job may
    change its threads between epochs without changing one weight or logged loss; where it
    does not (a kernel that splits its sums by thread), it keeps its threads."""
    previous = torch.get_num_threads()
    outputs = []
    try:
        for count in thread_counts:
            torch.set_num_threads(count)
            outputs.append(run())
    finally:
        torch.set_num_threads(previous)
    first = outputs[0]
    return all(
        len(output) == len(first) and all(torch.equal(a, b) for a, b in zip(output, first))
        for output in outputs[1:]
    )


# --- the choice ------------------------------------------------------------------------------


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


# --- the choice, by measurement --------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One way to train: a training path ("written-out backward" or "autograd") on an fp32
    matmul route proven exact here (see exact_routes)."""

    path: str
    route: str

    def __str__(self) -> str:
        return f"{self.path} on {self.route}"


PROBE_ROUNDS = 3  # measured rounds per candidate, after one warm-up round
PROBE_SHARE = 0.005  # the probe's steps, all candidates together, against the job's steps
PROBE_MIN_STEPS, PROBE_MAX_STEPS = 3, 8  # steps per candidate and round: a step jitters


def probe_steps(job_steps: int, candidates: int) -> int:
    """Steps per candidate and round so that the probe (warm-up + PROBE_ROUNDS rounds of every
    candidate) takes at most PROBE_SHARE of the job's `job_steps` training steps, but at
    least PROBE_MIN_STEPS (a job of a few epochs pays a larger share; in seconds, little)."""
    per_round = PROBE_SHARE * job_steps / (max(candidates, 1) * (PROBE_ROUNDS + 1))
    return max(PROBE_MIN_STEPS, min(PROBE_MAX_STEPS, int(per_round)))


PROBE_MARGIN = 0.03  # a later candidate must be this much faster to replace an earlier one


def fastest(timings: dict[Candidate, list[float]]) -> Candidate:
    """The candidate with the lowest best time per step (other processes only ever slow a
    round down, so the best round is the truest). The candidates come in order of
    preference (written-out before autograd, torch's default route before oneDNN); a later
    one wins only when more than PROBE_MARGIN faster, so that near-ties, where noise would
    decide, give the same choice (and the same fp32 rounding) run after run."""
    best = None
    for candidate, seconds in timings.items():
        if best is None or min(seconds) < min(timings[best]) * (1 - PROBE_MARGIN):
            best = candidate
    return best


def time_steps(
    makers: dict[Candidate, Callable[[nn.Module, torch.optim.Optimizer], Callable]],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    steps: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[Candidate, list[float]]:
    """Seconds per step of each candidate in each of PROBE_ROUNDS rounds, on batch `x`.

    The candidates train a copy of `model` with a fresh optimizer of the same kind and
    settings (`makers[c](copy, its_optimizer)` gives a candidate's step), so the run's own
    weights, optimizer state and random generators are untouched. The candidates take turns round by
    round, so all of them meet the machine in the same state; round 0 warms up, uncounted.
    """
    # One copy for all candidates: what it learns does not matter to the timing, and four
    # copies of a depth-3 model with gradients and Adam state held 55 MB more.
    twin = copy.deepcopy(model)
    twin_optimizer = type(optimizer)(twin.parameters(), **optimizer.defaults)
    steppers = {candidate: make(twin, twin_optimizer) for candidate, make in makers.items()}
    timings: dict[Candidate, list[float]] = {candidate: [] for candidate in makers}
    for round_ in range(PROBE_ROUNDS + 1):
        for candidate, step in steppers.items():
            with matmul_route(candidate.route):
                started = clock()
                for _ in range(steps):
                    loss = step(x)
                loss.item()  # waits for the device, where it runs asynchronously
                elapsed = clock() - started
            if round_:
                timings[candidate].append(elapsed / steps)
    return timings


def choose_training(
    makers: dict[Candidate, Callable[[nn.Module, torch.optim.Optimizer], Callable]],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    job_steps: int,
) -> tuple[Candidate, dict[str, float]]:
    """The fastest candidate on this machine for this run, and each candidate's best
    milliseconds per step ({} where there was nothing to choose). One log line."""
    if len(makers) == 1:
        (only,) = makers
        log.info("training takes %s (the only candidate)", only)
        return only, {}
    steps = probe_steps(job_steps, len(makers))
    timings = time_steps(makers, model, optimizer, x, steps)
    choice = fastest(timings)
    best_ms = {str(c): round(1000 * min(seconds), 3) for c, seconds in timings.items()}
    log.info(
        "speed probe, ms per step of %d rows (best of %d rounds of %d steps): %s; "
        "training takes %s",
        len(x),
        PROBE_ROUNDS,
        steps,
        ", ".join(f"{name} {ms:.2f}" for name, ms in best_ms.items()),
        choice,
    )
    return choice, best_ms


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` + ".lock" within the block (jobs starting together wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remembered_choice(
    cache: Path, key: str, candidates: list[Candidate], choose: Callable
) -> tuple[Candidate, dict[str, float]]:
    """The choice `cache` holds for `key` where it is still a candidate; else `choose()`'s
    (candidate, timings), stored there. Jobs starting at once wait for the first one's
    measurement, so every job of a kind trains the same way on a machine: reruns are
    bit-identical, not decided anew by timing noise."""
    with _locked(cache):
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
        if key in known and Candidate(*known[key]["choice"]) in candidates:
            choice = Candidate(*known[key]["choice"])
            log.info("training takes %s, as measured before on this machine (%s)", choice, cache)
            return choice, known[key]["probe_ms_per_step"]
        choice, timings = choose()
        known[key] = {"choice": [choice.path, choice.route], "probe_ms_per_step": timings}
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.write_text(json.dumps(known, indent=1) + "\n")
        tmp.replace(cache)
        return choice, timings
