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


def project_2d(z: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """Points to draw for a latent code and the axis names.

    2-D codes are drawn as they are; wider codes by their first two principal components
    (a linear, faithful-to-variance view); 1-D codes against a small random jitter.
    """
    if z.shape[1] == 2:
        return z, ("z0", "z1")
    if z.shape[1] == 1:
        jitter = np.random.default_rng(0).uniform(-1, 1, size=len(z))
        return np.column_stack([z[:, 0], jitter]), ("z0", "jitter (no meaning)")
    centred = z - z.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T, ("PC1 of the latent code", "PC2 of the latent code")


def latent_scatter(z: np.ndarray, labels: np.ndarray, title: str, class_names: list[str]):
    """The test set in latent space (see project_2d), coloured by class, with a legend."""
    points, (x_name, y_name) = project_2d(z)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    size = max(1.0, 40_000 / max(len(z), 1) ** 1.1)
    for label in np.unique(labels):
        mask = labels == label
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=size,
            alpha=0.6,
            color=cmap(int(label) % 10),
            label=class_names[int(label)],
            linewidths=0,
            rasterized=True,
        )
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title)
    ax.legend(
        title="class",
        markerscale=max(1.0, 12 / size) ** 0.5,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def metrics_vs_depth(summary: pd.DataFrame, intervals: pd.DataFrame):
    """One panel per metric against depth, a colour per latent size: each seed a point, the
    mean over seeds a line with its 95 % interval as bars, the PCA of that size dashed."""
    models = summary[summary["method"] == "autoencoder"]
    pca = summary[summary["method"] == "pca"].set_index("latent_dim")
    sizes = sorted(models["latent_dim"].unique())
    cmap = plt.get_cmap("tab10")
    n_cols = 3
    n_rows = -(-len(METRICS) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
    for ax, (metric, higher_is_better) in zip(axes.flat, METRICS.items()):
        for i, size in enumerate(sizes):
            color = cmap(i % 10)
            offset = 0.06 * (i - (len(sizes) - 1) / 2)  # side by side, not on top of each other
            points = models[models["latent_dim"] == size]
            ax.scatter(points["depth"] + offset, points[metric], color=color, alpha=0.35, s=14)
            mean = intervals[(intervals["latent_dim"] == size) & (intervals["metric"] == metric)]
            ax.errorbar(
                mean["depth"] + offset,
                mean["mean"],
                yerr=[mean["mean"] - mean["ci_low"], mean["ci_high"] - mean["mean"]],
                color=color,
                marker="o",
                capsize=3,
                label=f"latent {size}: mean, 95 % interval",
            )
            if size in pca.index:
                ax.axhline(
                    pca.loc[size, metric],
                    color=color,
                    linestyle="--",
                    linewidth=1,
                    label=f"PCA, {size} components",
                )
        ax.set_title(
            f"{metric} ({'higher' if higher_is_better else 'lower'} is better)", fontsize=10
        )
        ax.set_xlabel("hidden layers")
        ax.set_xticks(sorted(models["depth"].unique()))
    for ax in axes.flat[len(METRICS) :]:
        ax.set_visible(False)
    seeds = models.groupby(["latent_dim", "depth"]).size().min()
    fig.suptitle(
        f"Latent-space metrics against depth ({seeds} seed{'s' if seeds > 1 else ''} each; "
        "points are single seeds)"
    )
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def training_curves(histories: dict[tuple[int, int], dict[int, pd.DataFrame]]):
    """Train (solid) and validation (dashed) loss per epoch: a panel per (latent size, depth),
    a colour per seed; the title gives the mean final gap between validation and train."""
    keys = sorted(histories)
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False, sharey=True
    )
    cmap = plt.get_cmap("tab10")
    for ax, key in zip(axes[0], keys):
        latent, depth = key
        gaps = []
        for i, (seed, history) in enumerate(sorted(histories[key].items())):
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
            gaps.append(history["val_loss"].iloc[-1] - history["train_loss"].iloc[-1])
        ax.set_title(
            f"{depth} hidden layer{'s' if depth > 1 else ''}, latent {latent}\n"
            f"final gap (validation - train): {np.mean(gaps):+.4f}",
            fontsize=10,
        )
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("binary cross-entropy per pixel")
    axes[0, 0].legend(fontsize=7)
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
