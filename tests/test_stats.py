"""Intervals, paired comparisons and findings on inputs with known answers."""

import math

import pandas as pd
import pytest

from aedepth.metrics import METRICS
from aedepth.stats import (
    COMPARISON_COLUMNS,
    INTERVAL_COLUMNS,
    depth_comparisons,
    depth_intervals,
    findings_markdown,
    t_interval,
    verdict,
)


def test_t_interval_known_values():
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    # sd = 1, n = 3, t(0.975, df=2) = 4.302652729911275
    half = 4.302652729911275 / math.sqrt(3)
    assert mean == 2.0
    assert low == pytest.approx(2.0 - half) and high == pytest.approx(2.0 + half)
    assert t_interval([5.0, 5.0]) == (5.0, 5.0, 5.0)
    single = t_interval([0.7])
    assert single[0] == 0.7 and math.isnan(single[1]) and math.isnan(single[2])


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "expected"),
    [
        (0.01, 0.2, True, "better"),
        (0.01, 0.2, False, "worse"),
        (-0.3, -0.1, False, "better"),
        (-0.3, -0.1, True, "worse"),
        (-0.1, 0.1, True, "no clear difference"),
        (0.0, 0.1, True, "no clear difference"),
        (math.nan, math.nan, True, "no clear difference"),
    ],
)
def test_verdict(low, high, higher_is_better, expected):
    assert verdict(low, high, higher_is_better) == expected


def models_table(depth2_knn=(0.70, 0.73, 0.75)):
    rows = []
    for depth, knn, db in [
        (1, (0.60, 0.62, 0.64), (2.0, 2.1, 2.2)),
        (2, depth2_knn, (2.5, 2.6, 2.8)),
    ]:
        for seed in range(3):
            row = {m: 0.5 + 0.01 * seed for m in METRICS}  # identical shift: zero difference
            row |= {
                "latent_dim": 2,
                "depth": depth,
                "seed": seed,
                "knn_accuracy": knn[seed],
                "davies_bouldin": db[seed],
            }
            rows.append(row)
    return pd.DataFrame(rows)


def test_depth_intervals():
    intervals = depth_intervals(models_table())
    assert list(intervals.columns) == list(INTERVAL_COLUMNS)
    assert len(intervals) == 2 * len(METRICS)
    knn1 = intervals[(intervals.depth == 1) & (intervals.metric == "knn_accuracy")].iloc[0]
    assert knn1["mean"] == pytest.approx(0.62) and knn1["n_seeds"] == 3
    assert knn1["ci_low"] == pytest.approx(0.62 - 4.302652729911275 * 0.02 / math.sqrt(3))


def test_depth_comparisons_are_paired_and_directional():
    comparisons = depth_comparisons(models_table()).set_index("metric")
    assert list(comparisons.reset_index()[list(COMPARISON_COLUMNS)].columns) == list(
        COMPARISON_COLUMNS
    )
    knn = comparisons.loc["knn_accuracy"]
    assert (knn["depth"], knn["previous_depth"], knn["n_pairs"]) == (2, 1, 3)
    assert knn["mean_difference"] == pytest.approx((0.10 + 0.11 + 0.11) / 3)
    assert knn["verdict"] == "better"
    assert comparisons.loc["davies_bouldin", "verdict"] == "worse"  # higher DB is worse
    assert comparisons.loc["silhouette", "verdict"] == "no clear difference"


def test_pairs_use_only_shared_seeds():
    table = models_table()
    table = table[~((table.depth == 2) & (table.seed == 0))]
    comparisons = depth_comparisons(table).set_index("metric")
    assert comparisons.loc["knn_accuracy", "n_pairs"] == 2
    assert comparisons.loc["knn_accuracy", "mean_difference"] == pytest.approx(0.11)


def test_findings_follow_the_numbers():
    table = models_table()
    text = findings_markdown(table, depth_comparisons(table), data="sample")
    assert "3 seeds per depth" in text
    assert "1 → 2 hidden layers: mixed: better on 1, worse on 1 of 9 metrics" in text
    assert "better: knn_accuracy" in text and "worse: davies_bouldin" in text

    flipped = models_table(depth2_knn=(0.50, 0.52, 0.55))
    other = findings_markdown(flipped, depth_comparisons(flipped), data="sample")
    assert other != text
    assert "worse on 2 of 9 metrics" in other and "better:" not in other


def test_findings_with_one_seed_say_so():
    table = models_table()
    table = table[table.seed == 0]
    text = findings_markdown(table, depth_comparisons(table), data="sample")
    assert "1 seed per depth" in text and "single seed" in text
    assert "no clear difference on any of the 9 metrics" in text


def test_comparisons_stay_within_one_latent_size():
    small = models_table()
    large = models_table(depth2_knn=(0.50, 0.52, 0.55)).assign(latent_dim=8)
    comparisons = depth_comparisons(pd.concat([small, large]))
    knn = comparisons[comparisons.metric == "knn_accuracy"].set_index("latent_dim")
    assert knn.loc[2, "verdict"] == "better" and knn.loc[8, "verdict"] == "worse"
    assert len(depth_intervals(pd.concat([small, large]))) == 4 * len(METRICS)
    text = findings_markdown(pd.concat([small, large]), comparisons, data="sample")
    assert "1 → 2 hidden layers (latent size 8): worse on 2 of 9 metrics" in text
