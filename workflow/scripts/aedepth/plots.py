"""Figures of the study. Each function returns a matplotlib Figure; save_figure writes it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run on servers and cluster nodes
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from aedepth.files import atomic_output  # noqa: E402
from aedepth.grid import AUTOENCODER, COMPARED, HEADLINE_METRICS  # noqa: E402
from aedepth.metrics import METRICS  # noqa: E402
from aedepth.stats import t_interval  # noqa: E402

# Classes that the latent figures and the explorer name in a legend, a colour each (tab10 /
# Category10 up to 10, tab20 / Category20 up to 20); past it a continuous colour map over the
# class's position, with a colour bar, since no set of distinct colours stays readable.
NAMED_CLASSES = 20
# The longest class name a legend shows in full; a longer one is cut (…): the figure's size
# must not follow a name's length.
LEGEND_NAME_CHARS = 28
# The latent figure's drawing size, at most (with its legend or colour bar and a title of up to
# three lines): 8.5 x 6 inches, 1020 x 720 px at the default plot_dpi of 120.
LATENT_FIGURE_INCHES = (8.5, 6.0)


def save_figure(fig, path: str | Path, dpi: int, tight: bool = True) -> None:
    """Save atomically, so a killed job never leaves a complete-looking PNG. `tight` crops (or
    grows) the page to what is drawn; without it the PNG is the figure's own size."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)


def digit_grid(
    rows: list[tuple[str, np.ndarray]], title: str, shape: tuple[int, int, int] = (28, 28, 1)
):
    """One row of images per (label, images) pair; all rows show the same images. Each image
    (intensities in [0, 1], any layout of `shape`'s values) is drawn at (height, width,
    channels) `shape`: grey dark on light, 3 channels in their colours."""
    n_cols = len(rows[0][1])
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(0.9 * n_cols + 1.2, 0.95 * len(rows) + 0.5), squeeze=False
    )
    for (label, images), row_axes in zip(rows, axes):
        for image, ax in zip(images, row_axes):
            if shape[2] == 1:
                ax.imshow(image.reshape(shape[:2]), cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.imshow(np.clip(image.reshape(shape), 0, 1), interpolation="nearest")
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


def legend_name(name: str) -> str:
    """A class name as a legend shows it: at most LEGEND_NAME_CHARS characters, one line."""
    name = " ".join(str(name).split())
    return name if len(name) <= LEGEND_NAME_CHARS else name[: LEGEND_NAME_CHARS - 1] + "…"


def latent_scatter(z: np.ndarray, labels: np.ndarray, title: str, class_names: list[str]):
    """The test set in latent space (see project_2d), coloured by class: up to NAMED_CLASSES
    classes a colour each and a legend of their names (cut to LEGEND_NAME_CHARS); past it a
    continuous colour map (turbo) over the class's position, with a colour bar. The figure is
    LATENT_FIGURE_INCHES whatever the classes' number and names (save it without a tight box)."""
    points, (x_name, y_name) = project_2d(z)
    fig, ax = plt.subplots(figsize=LATENT_FIGURE_INCHES, layout="constrained")
    size = max(1.0, 40_000 / max(len(z), 1) ** 1.1)
    if len(class_names) <= NAMED_CLASSES:
        # tab10 for up to 10 classes (MNIST's figures as they were), tab20 for more
        cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
        for label in np.unique(labels):
            mask = labels == label
            ax.scatter(
                points[mask, 0], points[mask, 1], s=size, alpha=0.6,
                color=cmap(int(label) % cmap.N), label=legend_name(class_names[int(label)]),
                linewidths=0, rasterized=True,
            )  # fmt: skip
        ax.legend(
            title="class", markerscale=max(1.0, 12 / size) ** 0.5, loc="center left",
            bbox_to_anchor=(1.01, 0.5), frameon=False,
        )  # fmt: skip
    else:
        drawn = ax.scatter(
            points[:, 0], points[:, 1], s=size, alpha=0.6, c=labels, cmap="turbo",
            vmin=0, vmax=len(class_names) - 1, linewidths=0, rasterized=True,
        )  # fmt: skip
        fig.colorbar(
            drawn,
            ax=ax,
            label=f"class index, 0 to {len(class_names) - 1} ({len(class_names)} classes: too many to name)",
        )
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title)
    return fig


def _varying(table: pd.DataFrame, conditions: list[str]) -> list[str]:
    """The conditions that take more than one value in `table`: a value every run shares
    (the article arm of a one-arm study) says nothing in a legend."""
    return [c for c in conditions if table[c].nunique(dropna=True) > 1]


def _setting_column(table: pd.DataFrame, conditions: list[str], labels: dict[str, str]):
    """One text per row naming its conditions, e.g. "latent size 2" (the hue of a figure);
    callers pass the conditions that vary (`_varying`)."""
    if not conditions:
        return pd.Series("autoencoder", index=table.index)
    return table[conditions].apply(
        lambda row: ", ".join(
            f"{labels.get(c, c)} {row[c]}" for c in conditions if not pd.isna(row[c])
        ),
        axis=1,
    )


def _colour_of(table: pd.DataFrame, baseline, conditions: list[str], palette: dict):
    """A baseline's line takes the colour of the one model setting it matches (grey if several)."""
    mask = table["method"] == AUTOENCODER
    for c in conditions:
        if not pd.isna(baseline[c]):
            mask &= table[c] == baseline[c]
    matches = table.loc[mask, "setting"].unique()
    return palette[matches[0]] if len(matches) == 1 else "0.35"


def _t_bounds(values) -> tuple[float, float]:
    """seaborn errorbar: the same 95 % t interval as depth_intervals.csv (none for 1 seed)."""
    mean, low, high = t_interval(values)
    return (mean, mean) if np.isnan(low) else (low, high)


def metrics_vs_depth(summary: pd.DataFrame, conditions: list[str], labels: dict[str, str]):
    """One panel per metric against depth, a colour per setting of the conditions: each seed
    a point, the mean over seeds a line with its 95 % t interval as bars, and every baseline
    (by name) a horizontal line at its mean, in the colour of the setting it shares."""
    table = summary.assign(setting=_setting_column(summary, _varying(summary, conditions), labels))
    long = table.melt(
        id_vars=["method", "setting", COMPARED], value_vars=list(METRICS), var_name="metric"
    ).dropna(subset=["value"])
    models = long[long["method"] == AUTOENCODER]
    baselines = long[long["method"] != AUTOENCODER]
    settings = list(dict.fromkeys(table.loc[table["method"] == AUTOENCODER, "setting"]))
    palette = dict(zip(settings, sns.color_palette("tab10", len(settings))))
    grid = sns.FacetGrid(
        models,
        col="metric",
        col_order=list(METRICS),
        col_wrap=3,
        sharey=False,
        height=3.0,
        aspect=1.35,
    )
    encoding = {"x": COMPARED, "y": "value", "hue": "setting", "hue_order": settings}
    grid.map_dataframe(
        sns.lineplot,
        **encoding,
        palette=palette,
        errorbar=_t_bounds,
        err_style="bars",
        marker="o",
        err_kws={"capsize": 3},
    )
    grid.map_dataframe(
        sns.stripplot,
        **encoding,
        palette=palette,
        native_scale=True,
        alpha=0.35,
        size=4,
        jitter=0.06,
        dodge=False,
        legend=False,
    )
    styles = dict(zip(baselines["method"].unique(), ["--", ":", "-.", (0, (5, 1))] * 4))
    colours = {
        setting: _colour_of(table, rows.iloc[0], conditions, palette)
        for setting, rows in table[table["method"] != AUTOENCODER].groupby("setting")
    }
    for metric, ax in grid.axes_dict.items():
        rows = baselines[baselines["metric"] == metric]
        for (method, setting), values in rows.groupby(["method", "setting"], sort=False):
            ax.axhline(
                values["value"].mean(),
                linestyle=styles[method],
                linewidth=1.2,
                color=colours[setting],
                label=f"{method} ({setting})" if setting else method,
            )
        ax.set_title(f"{metric} ({'higher' if METRICS[metric] else 'lower'} is better)")
        ax.set_xlabel("hidden layers")
        ax.set_xticks(sorted(models[COMPARED].unique()))
    handles = {}
    for ax in grid.axes.flat:  # every setting and baseline once, wherever it was drawn
        handles |= dict(zip(*reversed(ax.get_legend_handles_labels())))
    grid.set_ylabels("")
    grid.figure.legend(
        list(handles.values()),
        [f"{n}: mean, 95 % interval" if n in settings else n for n in handles],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(3, len(handles)),
        fontsize=9,
        frameon=False,
    )
    n_seeds = int(table[table["method"] == AUTOENCODER].groupby([COMPARED, "setting"]).size().min())
    grid.figure.suptitle(
        f"Latent-space metrics against depth ({n_seeds} seed{'s' if n_seeds != 1 else ''} each; "
        "points are single seeds; baselines as horizontal lines)"
    )
    grid.figure.tight_layout()
    return grid.figure


def training_curves(histories: pd.DataFrame, improving: dict | None = None):
    """Loss per epoch, a panel per setting (`setting` column), a colour per seed: train solid,
    validation (when there is a split) dashed, test dotted; titles give the mean final gap and,
    from `improving` ({setting: [still_improving per seed]}), how many seeds were still
    improving at their last epoch (those panels get a red frame)."""
    long = histories.melt(
        id_vars=["setting", "seed", "epoch"],
        value_vars=["train_loss", "val_loss", "test_loss"],
        var_name="loss",
    ).dropna(subset=["value"])
    long["loss"] = long["loss"].str.removesuffix("_loss")
    grid = sns.relplot(
        long,
        kind="line",
        x="epoch",
        y="value",
        col="setting",
        col_wrap=min(4, long["setting"].nunique()),
        hue="seed",
        style="loss",
        style_order=["train", "val", "test"],
        palette="tab10",
        height=3.2,
        aspect=1.2,
        facet_kws={"sharey": True},
    )
    last = histories.sort_values("epoch").groupby(["setting", "seed"]).tail(1)
    gaps = (last["test_loss"] - last["train_loss"]).groupby(last["setting"]).mean()
    for setting, ax in grid.axes_dict.items():
        title = f"{setting}\nfinal gap (test - train): {gaps[setting]:+.4f}"
        flags = [bool(f) for f in (improving or {}).get(setting, []) if f is not None]
        if flags:
            title += f"\nstill improving at the end: {sum(flags)} of {len(flags)} seeds"
            if any(flags):
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(1.5)
        ax.set_title(title, fontsize=10)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    grid.set_axis_labels("epoch", "binary cross-entropy per pixel")
    return grid.figure


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


_MARKS = {
    "better": "▲",
    "worse": "▼",
    "no clear difference": "○",
    # the primary question's verdicts (aedepth.stats.PRIMARY_VERDICTS)
    "better by at least δ": "▲",
    "worse by at least δ": "▼",
    "better, not shown to reach δ": "△",
    "worse, not shown to reach δ": "▽",
    "no meaningful difference": "=",
    "inconclusive": "?",
}


def _interval_table(intervals: pd.DataFrame, conditions: list[str], labels: dict[str, str]):
    return intervals.assign(setting=_setting_column(intervals, conditions, labels))


def answer_figure(
    intervals: pd.DataFrame,
    comparisons: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    metrics: tuple[str, ...] = HEADLINE_METRICS,
    primary: pd.DataFrame | None = None,
):
    """The answer at a glance: a panel per headline metric (the primary metric first), its
    mean and 95 % interval over seeds against depth, a line per setting (e.g. per arm), every
    baseline a labelled horizontal line, and each depth step's verdict as a mark between the
    two depths, in the line's colour: on the primary metric's panel the primary question's
    (▲ better / ▼ worse by at least δ, △ / ▽ by an amount not shown to reach δ, = no
    meaningful difference, ? inconclusive), elsewhere the secondary one (▲, ▼, ○ no clear
    difference), each read off its simultaneous interval (aedepth.stats)."""
    conditions = _varying(intervals, conditions)
    table = _interval_table(intervals, conditions, labels)
    models = table[table["method"] == AUTOENCODER]
    baselines = table[table["method"] != AUTOENCODER]
    first = list(dict.fromkeys(primary["metric"])) if primary is not None else []
    metrics = [m for m in dict.fromkeys([*first, *metrics]) if m in set(models["metric"])]
    settings = list(dict.fromkeys(models["setting"]))
    palette = dict(zip(settings, sns.color_palette("tab10", len(settings))))
    steps = comparisons[~comparisons["metric"].isin(first)]
    if first:
        steps = pd.concat([primary[steps.columns.intersection(primary.columns)], steps])
    steps = steps.assign(setting=_setting_column(steps, conditions, labels))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        rows = models[models["metric"] == metric]
        for offset, setting in zip(np.linspace(-0.06, 0.06, len(settings)), settings):
            line = rows[rows["setting"] == setting].sort_values(COMPARED)
            x = line[COMPARED].astype(float) + (offset if len(settings) > 1 else 0)
            low = (line["mean"] - line["ci_low"]).fillna(0)
            high = (line["ci_high"] - line["mean"]).fillna(0)
            ax.errorbar(
                x, line["mean"], yerr=[low, high], marker="o", capsize=3,
                color=palette[setting], label=setting,
            )  # fmt: skip
            marks = steps[(steps["metric"] == metric) & (steps["setting"] == setting)]
            means = dict(zip(line[COMPARED].astype(int), line["mean"]))
            for step in marks.itertuples():
                depth, previous = (
                    int(getattr(step, COMPARED)),
                    int(getattr(step, f"previous_{COMPARED}")),
                )
                if depth in means and previous in means:
                    ax.annotate(
                        _MARKS.get(step.verdict, "?"),
                        ((depth + previous) / 2 + offset, (means[depth] + means[previous]) / 2),
                        color=palette[setting], ha="center", va="center", fontsize=12,
                    )  # fmt: skip
        styles = ["--", ":", "-.", (0, (5, 1))] * 4
        for style, (name, rows_b) in zip(
            styles, baselines[baselines["metric"] == metric].groupby("method", sort=False)
        ):
            value = rows_b["mean"].mean()
            ax.axhline(value, linestyle=style, color="0.3", linewidth=1.1)
            ax.annotate(
                name, (1.0, value), xycoords=("axes fraction", "data"), ha="right",
                va="bottom", fontsize=8, color="0.25",
            )  # fmt: skip
        role = " (primary)" if metric in first else ""
        ax.set_title(f"{metric}{role}\n({'higher' if METRICS[metric] else 'lower'} is better)")
        ax.set_xlabel("hidden layers")
        ax.set_xticks(sorted(models[COMPARED].dropna().astype(int).unique()))
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, [f"{n}: mean, 95 % interval" for n in names], loc="upper center",
        bbox_to_anchor=(0.5, 0.0), ncol=min(3, max(1, len(names))), frameon=False,
    )  # fmt: skip
    n_seeds = int(models["n_seeds"].min()) if not models.empty else 0
    fig.suptitle(
        f"Does depth help? Means over {n_seeds} seeds with 95 % intervals; dashed: baselines.\n"
        "Between depths the verdict: ▲ better, ▼ worse (primary: by at least δ), △ ▽ not shown "
        "to reach δ, = no meaningful difference, ? inconclusive, ○ no clear difference"
    )
    fig.tight_layout()
    return fig


def gap_vs_depth(intervals: pd.DataFrame, conditions: list[str], labels: dict[str, str]):
    """The article's overfitting warning: test minus train loss at the kept epoch against
    depth, mean and 95 % interval over seeds, a line per setting."""
    table = _interval_table(intervals, _varying(intervals, conditions), labels)
    rows = table[(table["method"] == AUTOENCODER) & (table["metric"] == "loss_gap")]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    settings = list(dict.fromkeys(rows["setting"]))
    for colour, setting in zip(sns.color_palette("tab10", len(settings)), settings):
        line = rows[rows["setting"] == setting].sort_values(COMPARED)
        ax.errorbar(
            line[COMPARED], line["mean"],
            yerr=[(line["mean"] - line["ci_low"]).fillna(0), (line["ci_high"] - line["mean"]).fillna(0)],
            marker="o", capsize=3, color=colour, label=setting,
        )  # fmt: skip
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("test - train BCE per pixel (kept epoch)")
    ax.set_xticks(sorted(rows[COMPARED].dropna().astype(int).unique()))
    ax.set_title("Overfitting against depth (mean, 95 % interval over seeds)")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
