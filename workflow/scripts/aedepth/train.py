"""One flat training loop with per-epoch atomic checkpoints and exact resume."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aedepth.files import atomic_output
from aedepth.jobs import UserFacingError
from aedepth.model import Autoencoder, build_model, to_unit

log = logging.getLogger("aedepth.train")

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds")


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


@torch.no_grad()
def mean_bce(model: Autoencoder, images: torch.Tensor, chunk: int = 4096) -> float:
    """Per-pixel binary cross-entropy of the reconstructions, averaged over `images`."""
    model.eval()
    total = 0.0
    for start in range(0, len(images), chunk):
        x = to_unit(images[start : start + chunk])
        total += F.binary_cross_entropy_with_logits(model(x), x, reduction="sum").item()
    return total / images.numel()


def train(
    hparams: dict,
    x_train: np.ndarray,
    x_test: np.ndarray,
    checkpoint_path: str | Path,
    device: torch.device,
    progress=None,
) -> tuple[Autoencoder, list[dict]]:
    """Train per `hparams`, resuming from `checkpoint_path` when it holds the same hparams.

    A checkpoint (weights, optimizer, shuffling RNG state, history, hparams) is written
    atomically after every epoch, so a killed job resumes and ends bit-identical to an
    uninterrupted run on the same device. Returns the model and its per-epoch history.
    """
    checkpoint_path = Path(checkpoint_path)
    torch.manual_seed(hparams["seed"])  # the one place seeds are set: weight init
    model = build_model(hparams).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams["learning_rate"], fused=True)
    shuffle = torch.Generator(device=device).manual_seed(hparams["seed"])
    history: list[dict] = []

    if checkpoint_path.exists():
        # Loaded to CPU: load_state_dict moves tensors to the model's device, and RNG
        # states must stay CPU byte tensors.
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if state["hparams"] == hparams:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            shuffle.set_state(state["shuffle_rng"])
            history = state["history"]
            log.info("resuming from %s after epoch %d", checkpoint_path, len(history))
        else:
            log.info("ignoring %s: it was made with other hyperparameters", checkpoint_path)

    train_images = flatten_images(x_train, device)
    test_images = flatten_images(x_test, device)
    batch_size = hparams["batch_size"]
    epochs = range(len(history) + 1, hparams["epochs"] + 1)
    for epoch in progress(epochs) if progress else epochs:
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_images), generator=shuffle, device=device)
        loss_sum = torch.zeros((), device=device)  # summed on device: no sync per batch
        for start in range(0, len(order), batch_size):
            x = to_unit(train_images[order[start : start + batch_size]])
            loss = F.binary_cross_entropy_with_logits(model(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(x)
        train_loss = loss_sum.item() / len(train_images)
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
        with atomic_output(checkpoint_path) as tmp:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "shuffle_rng": shuffle.get_state(),
                    "history": history,
                    "hparams": hparams,
                },
                tmp,
            )
    return model.eval(), history
