"""Figures of the study. Each function returns a matplotlib Figure; save_figure writes it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run on servers and cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aedepth.files import atomic_output  # noqa: E402
from aedepth.metrics import METRICS  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int) -> None:
    """Save atomically, so a killed job never leaves a complete-looking PNG."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def digit_grid(rows: list[tuple[str, np.ndarray]], title: str):
    """One row of 28x28 images per (label, images) pair; all rows show the same digits."""
    n_cols = len(rows[0][1])
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(0.9 * n_cols + 1.2, 0.95 * len(rows) + 0.5), squeeze=False
    )
    for (label, images), row_axes in zip(rows, axes):
        for image, ax in zip(images, row_axes):
            ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_scatter(z: np.ndarray, labels: np.ndarray, title: str):
    """The test set in the first two latent dimensions, coloured by digit."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    size = max(1.0, 40_000 / max(len(z), 1) ** 1.1)
    for digit in np.unique(labels):
        mask = labels == digit
        ax.scatter(
            z[mask, 0],
            z[mask, 1],
            s=size,
            alpha=0.6,
            color=cmap(int(digit) % 10),
            label=str(digit),
            linewidths=0,
            rasterized=True,
        )
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.set_title(title)
    ax.legend(
        title="digit",
        markerscale=max(1.0, 12 / size) ** 0.5,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def metrics_vs_depth(summary: pd.DataFrame):
    """One panel per metric: each seed a point, the mean over seeds a line, PCA a reference."""
    models = summary[summary["method"] == "autoencoder"]
    pca = summary[summary["method"] == "pca"]
    n_cols = 3
    n_rows = -(-len(METRICS) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
    for ax, (metric, higher_is_better) in zip(axes.flat, METRICS.items()):
        ax.scatter(models["depth"], models[metric], color="tab:blue", alpha=0.6, label="seed")
        means = models.groupby("depth")[metric].mean()
        ax.plot(means.index, means.values, color="tab:blue", marker="o", label="mean over seeds")
        if not pca.empty:
            ax.axhline(pca[metric].iloc[0], color="tab:gray", linestyle="--", label="PCA (2-D)")
        ax.set_title(
            f"{metric} ({'higher' if higher_is_better else 'lower'} is better)", fontsize=10
        )
        ax.set_xlabel("hidden layers")
        ax.set_xticks(sorted(models["depth"].unique()))
    for ax in axes.flat[len(METRICS) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories: dict[int, dict[int, pd.DataFrame]]):
    """Train (solid) and validation (dashed) loss per epoch: a panel per depth, a line per seed."""
    depths = sorted(histories)
    fig, axes = plt.subplots(
        1, len(depths), figsize=(4.2 * len(depths), 3.4), squeeze=False, sharey=True
    )
    cmap = plt.get_cmap("tab10")
    for ax, depth in zip(axes[0], depths):
        for i, (seed, history) in enumerate(sorted(histories[depth].items())):
            color = cmap(i % 10)
            ax.plot(
                history["epoch"], history["train_loss"], color=color, label=f"seed {seed} train"
            )
            ax.plot(
                history["epoch"],
                history["val_loss"],
                color=color,
                linestyle="--",
                label=f"seed {seed} validation",
            )
        ax.set_title(f"{depth} hidden layer{'s' if depth > 1 else ''}")
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("binary cross-entropy per pixel")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def pick_digits(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` fixed test images cycling through the classes 0, 1, ..., 9, 0, ...

    Deterministic (the first occurrences in file order), so every figure shows the same digits.
    """
    classes = np.unique(labels)
    chosen = []
    for i in range(count):
        occurrences = np.flatnonzero(labels == classes[i % len(classes)])
        chosen.append(occurrences[min(i // len(classes), len(occurrences) - 1)])
    return np.array(chosen)
