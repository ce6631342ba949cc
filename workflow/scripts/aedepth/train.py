"""The training loop: mini-batch Adam on the reconstruction loss, a checkpoint after every
epoch, exact resume, and early stopping on a validation split carved from the training images.

The loop is the one PyTorch teaches (forward, loss, backward, step). Where aedepth.speed
supports the model, the same step runs with its backward pass written out (bit-identical
weights, less overhead); the plain step is always there.

The weights are a function of the hyperparameters, the data, the code, the compute threads
and matmul route the config declares, and the hardware class (aedepth.hardware): nothing
is timed, cached outside the run, or drawn from the training's random generator but the
training itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aedepth import speed
from aedepth.data import dataset_fingerprint, validation_split
from aedepth.files import atomic_output
from aedepth.hardware import hardware_class, strict_mkl
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder, build_model, to_unit

log = logging.getLogger("aedepth.train")

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "test_loss", "seconds", "kept")
EVAL_CHUNK = 1024  # rows per evaluation pass: keeps the loss's elementwise work in cache
SPLIT_SEED = 0  # the validation split's seed: the same for every model of the study


class TrainingDiverged(UserFacingError):
    """The loss stopped being finite."""


def flush_subnormals() -> bool:
    """Flush subnormal floats (|x| < 2**-126) to zero in this process's CPU arithmetic;
    whether every compute thread now does (torch.get_num_threads() of them).

    Late in training, sigmoids of large pre-activations make subnormals, and on some CPUs
    each operation on one takes a microcode assist: on an Intel Xeon with AMX a depth-3
    epoch slowed from 3.0 s to 7.8 s over 50 epochs (a step at epoch 30: 9.9 ms, 5.9 ms
    flushed). Weights, gradients and losses live far above 2**-126, so training flushes on
    every machine and for both paths (which stay bit-identical to each other): one
    arithmetic, never chosen by timing. torch sets the mode for the calling thread; compute
    threads started later inherit it, ones that already run do not, hence the check.
    """
    if not torch.set_flush_denormal(True):  # not x86 with SSE3 or AArch64
        return False
    return _subnormals_flushed()


def _subnormals_flushed() -> bool:
    """Whether an elementwise op that makes subnormals, split over all compute threads,
    gives zeros on every one of them."""
    underflow = torch.full((torch.get_num_threads() * 65536,), -100.0)  # exp(-100) ~ 4e-44
    return torch.exp(underflow).count_nonzero().item() == 0


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserFacingError(
            "device: cuda was requested but no CUDA GPU is visible; use device: auto or cpu"
        )
    return torch.device(requested)


def flatten_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W[, 3]) uint8 -> (N, H * W[ * 3]) uint8 tensor on `device`; scaled to [0, 1]
    per batch.

    Keeping uint8 on the device holds the whole training set in a quarter of the memory.
    """
    rows = np.ascontiguousarray(images).reshape(len(images), math.prod(images.shape[1:]))
    return torch.from_numpy(rows).to(device)


def plain_step(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> Callable[[torch.Tensor], torch.Tensor]:
    """One training step on a batch x of intensities in [0, 1]; returns the batch's loss."""

    def step(x: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


@torch.no_grad()
def mean_bce(model: nn.Module, images: torch.Tensor, chunk: int = EVAL_CHUNK) -> float:
    """Per-pixel binary cross-entropy of the reconstructions, averaged over `images`
    (uint8 rows); NaN for no images."""
    if len(images) == 0:
        return math.nan
    model.eval()
    total = 0.0
    for start in range(0, len(images), chunk):
        x = to_unit(images[start : start + chunk])
        total += speed.bce_sum(model(x), x)[0].item()  # BCE with logits, summed
    return total / images.numel()


def kept_epoch(val_losses: list[float], patience: int) -> int:
    """The epoch (1-based) whose weights a run keeps: the last one, or with early stopping
    (patience > 0) the one with the lowest validation loss (the first of equals)."""
    if patience <= 0 or not val_losses:
        return len(val_losses)
    return int(np.argmin(val_losses)) + 1


def should_stop(val_losses: list[float], patience: int) -> bool:
    """Early stopping: `patience` epochs have passed without a better validation loss."""
    return patience > 0 and len(val_losses) - kept_epoch(val_losses, patience) >= patience


def _row_counts(rows: int, chunk: int) -> set[int]:
    """The row counts of the slices [0:chunk], [chunk:2*chunk], ... of `rows` rows."""
    return {count for count in (min(chunk, rows), rows % chunk) if count}


def code_version() -> str:
    """A hash of the training code (train.py, speed.py, model.py): a checkpoint written by
    other code is not resumed."""
    digest = hashlib.sha256()
    for name in ("train.py", "speed.py", "model.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def _resumable(checkpoint_path: Path, made_by: dict) -> dict | None:
    """The checkpoint's contents if it loads and was made by the same run (`made_by`: the
    hparams, data, hardware class, code version, threads and arithmetic); else None, and a checkpoint that exists
    is set aside as *.stale (one log line says why), never resumed and never a crash."""
    if not checkpoint_path.exists():
        return None
    try:
        # Loaded to CPU: load_state_dict moves tensors to the model's device, and RNG
        # states must stay CPU byte tensors. weights_only: never runs pickled code.
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, garbage, or holding pickled objects
        # Not torch's message: it advises loading with weights_only=False, wrong for a bad file.
        reason = f"it is not a readable plain checkpoint ({type(error).__name__})"
    else:
        differing = [
            key for key in made_by if not isinstance(state, dict) or state.get(key) != made_by[key]
        ]
        if not differing:
            return state
        reason = f"it was made with other {', '.join(differing)}"
    stale = checkpoint_path.with_name(checkpoint_path.name + ".stale")
    checkpoint_path.replace(stale)
    log.info("set aside %s as %s: %s; starting afresh", checkpoint_path, stale.name, reason)
    return None


FAST_PATH, PLAIN_PATH = "written-out backward", "autograd"


def train(
    hparams: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    checkpoint_path: str | Path,
    device: torch.device,
    progress=None,
    matmul_route: str = "auto",
) -> tuple[Autoencoder, list[dict], dict]:
    """Train per `hparams` on torch's threads, resuming from `checkpoint_path` when the same
    run wrote it.

    hparams["validation_fraction"] (default 0) of each class of the training images is held
    out as the validation split (the same split for every model); training uses the rest.
    Each epoch records the mean training loss, the validation loss (NaN without a split) and
    the test loss (the test split is used for nothing else). With early_stopping_patience > 0
    training stops once that many epochs bring no better validation loss, and the best epoch's
    weights are kept; otherwise the last epoch's. The history's `kept` column marks that epoch.

    A checkpoint (weights, best weights, optimizer, RNG states, history, and what made it) is
    written atomically after every epoch, so a killed job resumes and ends bit-identical to an
    uninterrupted run. A checkpoint of another run, or one that does not load, is set aside
    (*.stale). `matmul_route` (auto, default, onednn) picks the fp32 matmul route by a fixed
    rule (speed.training_route). Returns the model, its per-epoch history and how it was
    trained: {"hardware_class", "threads", "training_path", "matmul_route",
    "subnormals_flushed"}.
    """
    strict_mkl()  # before this process's first matmul: MKL fixes its mode there
    checkpoint_path = Path(checkpoint_path)
    patience = hparams.get("early_stopping_patience", 0)
    fit_images, val_images, test_images = _splits(hparams, x_train, y_train, x_test, device)
    torch.manual_seed(hparams["seed"])  # the one place seeds are set: weight init, dropout
    # cuDNN's fastest convolution kernels may add in any order (the conv family on a GPU):
    # ask for its deterministic ones, chosen without timing them
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    flushed = _flush_subnormals_or_say()  # before any computation starts compute threads
    model = build_model(hparams).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams["learning_rate"], fused=True)
    shuffle = torch.Generator(device=device).manual_seed(hparams["seed"])
    step, how = _how_to_train(
        model, optimizer, device, matmul_route, hparams, (fit_images, val_images, test_images)
    )
    how["subnormals_flushed"] = flushed
    made_by = _made_by(hparams, {"x_train": x_train, "y_train": y_train, "x_test": x_test}, how)
    history, best_model = _resume(checkpoint_path, made_by, model, optimizer, shuffle, device)
    log.info(
        "training path: %s; fp32 matmul route: %s; %d thread(s); %s",
        *(how[key] for key in ("training_path", "matmul_route", "threads", "hardware_class")),
    )
    epochs = range(len(history) + 1, hparams["epochs"] + 1)
    with speed.matmul_route(how["matmul_route"]):
        for epoch in progress(epochs) if progress else epochs:
            if should_stop([row["val_loss"] for row in history], patience):
                log.info(
                    "early stopping after epoch %d: no better validation loss in %d epochs",
                    len(history),
                    patience,
                )
                break
            started = time.perf_counter()
            train_loss = _train_epoch(step, model, fit_images, shuffle, hparams["batch_size"])
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"training loss became {train_loss} in epoch {epoch}: "
                    "lower learning_rate (or batch_size) and run again"
                )
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": mean_bce(model, val_images),
                    "test_loss": mean_bce(model, test_images),
                    "seconds": time.perf_counter() - started,
                }
            )
            _log_epoch(history[-1], hparams["epochs"])
            kept = kept_epoch([row["val_loss"] for row in history], patience)
            for row in history:
                row["kept"] = int(row["epoch"] == kept)
            if patience > 0 and kept == epoch:
                best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
            checkpoint = {
                "model": model.state_dict(),
                "best_model": best_model,
                "optimizer": optimizer.state_dict(),
                "shuffle_rng": shuffle.get_state(),
                "global_rng": _global_rng(device),
                "history": history,
            }
            with atomic_output(checkpoint_path) as tmp:
                torch.save(checkpoint | made_by, tmp)
    if patience > 0:  # keep the weights of the best validation epoch
        model.load_state_dict(best_model)
    model.zero_grad(set_to_none=True)
    return model.eval(), history, how


def _made_by(hparams: dict, arrays: dict[str, np.ndarray], how: dict) -> dict:
    """What a checkpoint must have been made with to be resumed: the hparams, the data (its
    arrays' SHA-256, about 0.1 s for MNIST), the training code, and how it trains."""
    return {
        "hparams": hparams,
        "data": dataset_fingerprint(arrays)["sha256"],
        "code": code_version(),
        **{key: how[key] for key in ("hardware_class", "threads", "matmul_route")},
        "subnormals_flushed": how["subnormals_flushed"],
    }


def _resume(checkpoint_path, made_by, model, optimizer, shuffle, device):
    """(history, best weights so far) of the checkpoint this run wrote, its model, optimizer
    and generators restored; ([], None) where there is none to resume."""
    history, best_model = [], None
    state = _resumable(checkpoint_path, made_by)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle_rng"])
        _set_global_rng(device, state["global_rng"])
        history, best_model = state["history"], state["best_model"]
        log.info("resuming from %s after epoch %d", checkpoint_path, len(history))
    return history, best_model


def _flush_subnormals_or_say() -> bool:
    """flush_subnormals(), the one place the float mode is set; one log line where it fails."""
    flushed = flush_subnormals()
    if not flushed:
        log.info(
            "subnormal floats are not flushed to zero on every compute thread (threads "
            "started before training, or a CPU without the mode): late epochs may run slower"
        )
    return flushed


def _how_to_train(model, optimizer, device, matmul_route, hparams, splits):
    """The training step and how it trains ({"hardware_class", "threads", "training_path",
    "matmul_route"}): the route by its fixed rule, the written-out step where it covers the
    model (the same bits as the plain one)."""
    fit, val, test = splits
    route = speed.training_route(
        matmul_route,
        device,
        speed.layer_shapes(model),
        train_rows=_row_counts(len(fit), hparams["batch_size"]),
        eval_rows=_row_counts(len(val), EVAL_CHUNK) | _row_counts(len(test), EVAL_CHUNK),
    )
    step = speed.fast_step(model, optimizer, device)  # None (one log line) where not covered
    how = {
        "hardware_class": hardware_class(device.type, _device_name(device)),
        "threads": torch.get_num_threads(),
        "training_path": FAST_PATH if step else PLAIN_PATH,
        "matmul_route": route,
    }
    return step or plain_step(model, optimizer), how


def _splits(hparams, x_train, y_train, x_test, device):
    """The fitted, validation and test images as uint8 rows on `device`; refuses early
    stopping without a validation split."""
    fraction = hparams.get("validation_fraction", 0)
    if hparams.get("early_stopping_patience", 0) > 0 and not fraction > 0:
        raise UserFacingError(
            "early_stopping_patience > 0 needs a validation split (early stopping never looks "
            "at the test split): set validation_fraction above 0, e.g. 0.1"
        )
    fit_index, val_index = validation_split(y_train, fraction, seed=SPLIT_SEED)
    # without a validation split all images are fitted, in order: no copy (47 MB for MNIST)
    fit_images = flatten_images(x_train if len(val_index) == 0 else x_train[fit_index], device)
    return fit_images, flatten_images(x_train[val_index], device), flatten_images(x_test, device)


def _train_epoch(step, model, fit_images, shuffle, batch_size) -> float:
    """One pass over the fitted images in the shuffle's order; the mean per-pixel loss."""
    model.train()
    order = torch.randperm(len(fit_images), generator=shuffle, device=fit_images.device)
    loss_sum = torch.zeros((), device=fit_images.device)  # summed on the device: no sync per batch
    for start in range(0, len(order), batch_size):
        # index_select copies whole rows; images[indices] goes element by element
        x = to_unit(torch.index_select(fit_images, 0, order[start : start + batch_size]))
        loss_sum += step(x) * x.numel()
    return loss_sum.item() / fit_images.numel()


def _log_epoch(row: dict, epochs: int) -> None:
    log.info(
        "epoch %d/%d train %.5f val %.5f test %.5f (%.2f s)",
        row["epoch"],
        epochs,
        row["train_loss"],
        row["val_loss"],
        row["test_loss"],
        row["seconds"],
    )


def _device_name(device: torch.device) -> str:
    """The GPU's name (its model decides the kernels); "" on a CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else ""


def _global_rng(device: torch.device) -> torch.Tensor:
    """The state of torch's global generator on `device` (dropout draws from it)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_global_rng(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)
