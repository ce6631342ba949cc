"""Figure legends name what varies between runs, not what every run shares."""

import itertools

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from aedepth.grid import AUTOENCODER
from aedepth.plots import answer_figure

CONDITIONS = ["arm", "training", "latent_dim"]
LABELS = {"arm": "arm", "training": "training", "latent_dim": "latent size"}


def _tables(arms):
    """Intervals of two depths per arm (kNN only) and one PCA row, with the depth step."""
    intervals = [
        {"method": AUTOENCODER, "arm": arm, "training": "fixed", "latent_dim": 2,
         "depth": depth, "metric": "knn_accuracy", "mean": 0.6 + 0.1 * depth,
         "ci_low": 0.55 + 0.1 * depth, "ci_high": 0.65 + 0.1 * depth, "n_seeds": 3}
        for arm, depth in itertools.product(arms, (1, 2))
    ]  # fmt: skip
    intervals.append(
        {"method": "pca", "arm": None, "training": None, "latent_dim": 2, "depth": None,
         "metric": "knn_accuracy", "mean": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n_seeds": 1}
    )  # fmt: skip
    comparisons = [
        {"arm": arm, "training": "fixed", "latent_dim": 2, "depth": 2, "previous_depth": 1,
         "metric": "knn_accuracy", "verdict": "better"}
        for arm in arms
    ]  # fmt: skip
    return pd.DataFrame(intervals), pd.DataFrame(comparisons)


def _legend(fig) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_the_answer_legend_names_only_the_conditions_that_vary():
    intervals, comparisons = _tables(["article", "matched_params"])
    assert _legend(answer_figure(intervals, comparisons, CONDITIONS, LABELS)) == [
        "arm article: mean, 95 % interval",
        "arm matched_params: mean, 95 % interval",
    ]
    intervals, comparisons = _tables(["article"])
    assert _legend(answer_figure(intervals, comparisons, CONDITIONS, LABELS)) == [
        "autoencoder: mean, 95 % interval"
    ]


def _marks(fig) -> dict[str, list[str]]:
    """Each panel's title -> the verdict marks drawn between depths."""
    return {ax.get_title(): [t.get_text() for t in ax.texts if t.get_text() in "▲▼△▽○=?"]
            for ax in fig.axes}  # fmt: skip


def test_the_primary_metric_panel_shows_the_primary_verdict():
    intervals, comparisons = _tables(["article"])
    primary = comparisons.assign(verdict="no meaningful difference")
    fig = answer_figure(intervals, comparisons, CONDITIONS, LABELS, primary=primary)
    assert _marks(fig) == {"knn_accuracy (primary)\n(higher is better)": ["="]}
    plain = answer_figure(intervals, comparisons, CONDITIONS, LABELS)
    assert _marks(plain) == {"knn_accuracy\n(higher is better)": ["▲"]}
    for verdict, mark in (("better, not shown to reach δ", "△"), ("worse by at least δ", "▼")):
        fig = answer_figure(intervals, comparisons, CONDITIONS, LABELS,
                            primary=comparisons.assign(verdict=verdict))  # fmt: skip
        assert _marks(fig) == {"knn_accuracy (primary)\n(higher is better)": [mark]}


# --- many classes, long names: the latent figure stays readable and its size bounded ------------


def _latent_png(tmp_path, classes: list[str], dpi: int = 120):
    """The latent figure of random codes over `classes`, saved as the workflow saves it; its
    figure and its pixel size."""
    import numpy as np
    from PIL import Image

    from aedepth.plots import latent_scatter, save_figure

    rng = np.random.default_rng(0)
    labels = np.arange(1000) % len(classes)
    fig = latent_scatter(rng.normal(size=(1000, 2)), labels, "depth 2, seed 0\nkNN 0.9", classes)
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    inside = all(
        fig.bbox.contains(*corner)
        for legend in legends
        for corner in legend.get_window_extent().corners()
    )
    bars = len(fig.axes) - 1  # a colour bar is an axes of its own
    entries = [t.get_text() for legend in legends for t in legend.get_texts()]
    save_figure(fig, tmp_path / "latent.png", dpi, tight=False)
    return entries, bars, inside, Image.open(tmp_path / "latent.png").size


def test_up_to_twenty_classes_are_named_in_a_legend_within_the_figure(tmp_path):
    from aedepth.plots import LATENT_FIGURE_INCHES, LEGEND_NAME_CHARS

    names = [f"<img src=x onerror=alert({k})> " + "long name " * 20 for k in range(20)]
    entries, bars, inside, size = _latent_png(tmp_path, names)
    assert len(entries) == 20 and bars == 0 and inside
    assert all(len(entry) <= LEGEND_NAME_CHARS for entry in entries)
    assert entries[0] == names[0][: LEGEND_NAME_CHARS - 1] + "…"
    assert size == (LATENT_FIGURE_INCHES[0] * 120, LATENT_FIGURE_INCHES[1] * 120)


def test_past_twenty_classes_a_colour_bar_and_the_same_size(tmp_path):
    from aedepth.plots import LATENT_FIGURE_INCHES

    for count in (21, 300, 1000):  # 300 made a 818 x 12,722 px figure (#34)
        entries, bars, _, size = _latent_png(tmp_path, [f"class {k}" for k in range(count)])
        assert entries == [] and bars == 1
        assert size == (LATENT_FIGURE_INCHES[0] * 120, LATENT_FIGURE_INCHES[1] * 120)


def test_the_explorer_palette_names_at_most_twenty_classes():
    import pytest

    from aedepth.explorer import class_palette

    assert len(set(class_palette(10))) == 10 and len(set(class_palette(20))) == 20
    with pytest.raises(ValueError, match="at most 20"):
        class_palette(21)
