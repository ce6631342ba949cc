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
