"""The primary question: power and equivalence against scipy/statsmodels, the two-noise
interval's coverage, honest pair counts and the headline that answers in the metric's units."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from layouts import PRIMARY_LAYOUT

from aedepth.jobs import UserFacingError
from aedepth.stats import (
    PairedEstimate,
    Question,
    depth_comparisons,
    depth_intervals,
    findings_markdown,
    headline,
    image_variance,
    paired_estimate,
    paired_power,
    primary_comparisons,
    seeds_for_equivalence,
    seeds_for_power,
    seeds_to_detect,
)

CONDITIONS = ["latent_dim"]
LABELS = {"depth": "depth", "latent_dim": "latent size", "seed": "seed"}
QUESTION = Question("knn_accuracy", 0.01)
EFFECTS = np.round(np.arange(0.2, 12.01, 0.2), 1)


def reference_power(d: float, n: int, alpha: float = 0.05) -> float:
    """Two-sided paired t test power from its definition, T = (Z + d sqrt(n)) / sqrt(V / df),
    integrated over the chi-square density of V (independent of scipy's nct)."""
    df, ncp = n - 1, d * math.sqrt(n)
    c = stats.t.isf(alpha / 2, df)

    def rejects(v: float) -> float:
        s = c * math.sqrt(v / df)
        return stats.chi2.pdf(v, df) * (stats.norm.sf(s - ncp) + stats.norm.cdf(-s - ncp))

    return integrate.quad(rejects, 0, np.inf, limit=400, epsabs=1e-13)[0]


@pytest.mark.slow  # ~25 s: the definition is integrated where statsmodels gives NaN
def test_power_equals_statsmodels_for_2_to_40_seeds_and_effects_to_12():
    from statsmodels.stats.power import TTestPower

    reference = TTestPower()
    undefined = 0
    for n in range(2, 41):
        for d in EFFECTS:
            expected = reference.power(d, n, 0.05)
            if math.isnan(expected):  # statsmodels (scipy's nct) gives NaN far in a tail
                undefined += 1
                expected = reference_power(d, n)
            assert paired_power(d, n) == pytest.approx(expected, abs=1e-9), (d, n)
    assert undefined > 0  # the cases the old code reported as NaN are covered
    assert paired_power(8.0, 2) == pytest.approx(0.6253, abs=1e-4)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_seeds_for_power_equals_statsmodels_solve_power_rounded_up():
    from statsmodels.stats.power import TTestPower

    reference = TTestPower()
    for d in EFFECTS:
        solved = reference.solve_power(effect_size=d, alpha=0.05, power=0.8)
        expected = max(2, math.ceil(solved)) if not math.isnan(solved) else None
        if expected is None or not reference.power(d, expected, 0.05) >= 0.8:
            # statsmodels does not converge (NaN) or stops short (d 11: 2 seeds, power 0.78)
            expected = next(n for n in range(2, 100) if reference_power(d, n) >= 0.8)
        assert seeds_for_power(d) == expected, d
    assert seeds_for_power(8.0) == 3  # 2 seeds give power 0.625
    assert seeds_for_power(-1.0) == seeds_for_power(1.0) == 10
    assert math.isnan(seeds_for_power(0.0)) and math.isnan(seeds_for_power(0.01))  # > 10,000


def test_power_where_scipy_lost_the_lower_tail():
    # statsmodels and the old code: NaN, so "2 seeds" for d_z 8, where 3 are needed
    assert paired_power(8.0, 2) == pytest.approx(reference_power(8.0, 2), abs=1e-9)
    assert paired_power(8.0, 2) == pytest.approx(0.6253, abs=1e-4)
    assert paired_power(0.5, 34) >= 0.8 > paired_power(0.5, 33)


@pytest.mark.parametrize("differences", [[0.004, 0.012, 0.009], [-0.02, 0.001, 0.015, 0.003]])
def test_tost_and_difference_p_values_equal_direct_one_sided_t_tests(differences):
    estimate = paired_estimate(differences)
    margin = 0.01
    lower = stats.ttest_1samp(differences, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(differences, margin, alternative="less").pvalue
    assert estimate.equivalence_p(margin) == pytest.approx(max(lower, upper), rel=1e-12)
    assert estimate.p_value() == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    low, high = estimate.interval()
    expected = stats.ttest_1samp(differences, 0).confidence_interval(0.95)
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_constant_differences_get_exact_answers_not_nan():
    moved = paired_estimate([0.02, 0.02, 0.02])
    assert moved.p_value() == 0.0 and moved.equivalence_p(0.01) == 1.0
    assert moved.equivalence_p(0.05) == 0.0
    assert paired_estimate([0.0, 0.0]).p_value() == 1.0


def test_image_variance_is_the_bootstrap_of_the_seeds_mean_less_the_interaction():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.3, 2000)  # an image effect every seed shares
    x = 0.01 + shared + rng.normal(0, 0.2, (4, 2000))
    closed_form = x.mean(axis=0).var() / 2000  # a mean's bootstrap variance
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0) + x.mean()
    interaction = (residual**2).sum() / (3 * 1999) / (4 * 2000)
    assert image_variance(x) == pytest.approx(closed_form - interaction, rel=0.08)
    assert image_variance(x) == image_variance(x)  # a fixed generator: one data, one answer
    independent = rng.normal(0, 0.3, (4, 2000))  # no shared image effect: nothing to add
    assert image_variance(independent) < 0.2 * independent.mean(axis=0).var() / 2000


def test_more_seeds_cannot_beat_the_test_sets_own_noise():
    assert seeds_to_detect(0.01, sd=0.01, image_variance=0.0) == seeds_for_power(1.0)
    assert math.isnan(seeds_to_detect(0.01, sd=0.01, image_variance=0.01**2))
    assert math.isnan(seeds_for_equivalence(0.01, sd=0.01, image_variance=0.01**2))
    few = seeds_to_detect(0.01, sd=0.01, image_variance=1e-6)
    assert few > seeds_for_power(1.0)  # the image part costs seeds
    holm_strict = seeds_to_detect(0.01, sd=0.01, alpha=0.05 / 4)
    assert holm_strict > seeds_for_power(1.0)
    # equivalence at true difference 0: margin / se >= t(0.95) + t(0.9) (Chow, Shao & Wang)
    n = seeds_for_equivalence(0.01, sd=0.01)
    threshold = [stats.t.isf(0.05, k - 1) + stats.t.isf(0.1, k - 1) for k in (n - 1, n)]
    assert math.sqrt(n - 1) < threshold[0] and math.sqrt(n) >= threshold[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed_sd", "image_sd"),
    [(0.05, 0.0), (0.01, 0.2), (0.0, 0.2)],
    ids=["seeds dominate", "both", "test images dominate"],
)
def test_the_two_noise_interval_covers_95_percent(seed_sd, image_sd):
    """A known difference (0.05), 3 seeds and 400 test images shared by all seeds: seed,
    image and seed-by-image noise; 1,000 simulated studies."""
    rng = np.random.default_rng(7)
    covered = 0
    for k in range(1000):
        x = (
            0.05
            + rng.normal(0, seed_sd, (3, 1))
            + rng.normal(0, image_sd, (1, 400))
            + rng.normal(0, 0.3, (3, 400))
        )
        low, high = paired_estimate(x, seed=k).interval()
        covered += low <= 0.05 <= high
    assert 0.93 <= covered / 1000 <= 0.97


def models(seeds_by_depth, knn_by_depth, improving=False, patience=0):
    rows = []
    for depth, seeds in seeds_by_depth.items():
        for seed in seeds:
            rows.append(
                {
                    "model": f"depth{depth}_dim2_seed{seed}",
                    "method": "autoencoder",
                    "latent_dim": 2,
                    "depth": depth,
                    "seed": seed,
                    "knn_accuracy": knn_by_depth[depth] + 0.001 * seed * depth,
                    "silhouette": 0.3 + 0.01 * seed,
                    "epochs": 300 if patience else 50,
                    "early_stopping_patience": patience,
                    "still_improving": improving,
                    "val_slope_last10": -0.001,
                }
            )
    return pd.DataFrame(rows)


def test_a_missing_seed_is_named_in_the_headline():
    table = models({1: [0, 1, 2], 2: [0, 3, 4]}, {1: 0.60, 2: 0.62})
    primary = primary_comparisons(table, CONDITIONS, QUESTION)
    assert list(primary.columns) == [c for c in PRIMARY_LAYOUT if c not in ("arm", "training")]
    row = primary.iloc[0]
    assert (row.n_pairs, row.n_seeds) == (1, 5)
    (sentence,) = headline(table, primary, CONDITIONS, LABELS)
    assert "(only 1 paired seed of the 5 seeds trained at these depths, 50 epochs)" in sentence
    assert sentence.endswith("inconclusive: at least 2 paired seeds are needed for an interval.")
    intervals = depth_intervals(table, CONDITIONS)
    comparisons = depth_comparisons(table, CONDITIONS)
    text = findings_markdown(table, intervals, comparisons, primary, CONDITIONS, LABELS, "sample")
    assert "5 seeds per depth" not in text and "Seeds trained: 5 (0, 1, 2, 3, 4)" in text


def test_one_or_no_pair_with_per_image_values_gives_no_interval():
    rng = np.random.default_rng(2)
    for seeds, pairs in (({1: [0, 1, 2], 2: [0, 3, 4]}, 1), ({1: [0, 1], 2: [2, 3]}, 0)):
        table = models(seeds, {1: 0.6, 2: 0.62})
        per_image = {m: rng.random(50) for m in table.model}
        row = primary_comparisons(table, CONDITIONS, QUESTION, per_image).iloc[0]
        assert row.n_pairs == pairs and math.isnan(row.ci_low) and row.df == pairs - 1
        (sentence,) = headline(table, primary_comparisons(table, CONDITIONS, QUESTION, per_image),
                               CONDITIONS, LABELS)  # fmt: skip
        assert f"(only {pairs} paired seed" in sentence and ", 50 epochs)" in sentence
    assert sentence.startswith("1 → 2 hidden layers: knn_accuracy: no seed trained at both depths")


def test_duplicate_runs_are_refused_in_one_line():
    table = models({1: [0, 1], 2: [0, 1]}, {1: 0.6, 2: 0.7})
    twice = pd.concat([table, table.iloc[[2]]], ignore_index=True)
    for analysis in (
        lambda t: primary_comparisons(t, CONDITIONS, QUESTION),
        lambda t: depth_comparisons(t, CONDITIONS),
        lambda t: depth_intervals(t, CONDITIONS),
    ):
        with pytest.raises(UserFacingError, match=r"^the summary holds 2 rows for method "
                           r"autoencoder, latent_dim 2, depth 2, seed 0: each run once"):  # fmt: skip
            analysis(twice)


def test_each_verdict_and_its_sentence():
    conditions = CONDITIONS
    cases = {
        "better": {1: 0.60, 2: 0.65},
        "no meaningful difference": {1: 0.60, 2: 0.601},
        "inconclusive": {1: 0.60, 2: 0.603},
    }
    spreads = {"better": 0.001, "no meaningful difference": 0.0005, "inconclusive": 0.01}
    for verdict, knn in cases.items():
        table = models({1: [0, 1, 2, 3, 4], 2: [0, 1, 2, 3, 4]}, knn)
        wobble = np.array([0, 1, -1, 2, -2] * 2) * spreads[verdict]
        table["knn_accuracy"] += np.where(table.depth == 2, wobble, 0)
        primary = primary_comparisons(table, conditions, QUESTION)
        assert primary.iloc[0].verdict == verdict
        (sentence,) = headline(table, primary, conditions, LABELS)
        assert re.match(
            r"1 → 2 hidden layers: knn_accuracy [+-][0-9.e-]+ \[[0-9.e-]+, [0-9.e-]+\] "
            r"\(5 paired seeds, 50 epochs\): ", sentence
        ), sentence  # fmt: skip
        if verdict == "no meaningful difference":
            assert sentence.endswith("within ±0.01: no meaningful difference.")
        if verdict == "inconclusive":
            assert re.search(r"about \d+ seeds would show a difference of 0.01 \(\d+ to show "
                             r"there is none\)\.$", sentence)  # fmt: skip


def test_the_budget_and_models_still_improving_are_in_the_same_sentence():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7}, improving=True)
    (sentence,) = headline(
        table, primary_comparisons(table, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert "(3 paired seeds, 50 epochs, all 6 models still improving at the end)" in sentence
    some = table.assign(still_improving=table.seed == 0)
    (sentence,) = headline(
        some, primary_comparisons(some, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert "(3 paired seeds, 50 epochs, 2 of its 6 models still improving at the end)" in sentence
    stopped = models({1: [0, 1], 2: [0, 1]}, {1: 0.6, 2: 0.7}, patience=10)
    (sentence,) = headline(
        stopped, primary_comparisons(stopped, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert "(2 paired seeds, up to 300 epochs, early stopping)" in sentence


def test_per_image_values_add_the_test_sets_noise():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7})
    rng = np.random.default_rng(1)
    hard = rng.random(1000) < 0.3  # images the deeper models get wrong, every seed alike
    per_image = {}
    for row in table.itertuples():
        correct = rng.random(1000) < row.knn_accuracy
        per_image[row.model] = np.where(hard & (row.depth == 2), 0.0, correct).astype(float)
    table["knn_accuracy"] = [per_image[m].mean() for m in table.model]
    seeds_only = primary_comparisons(table, CONDITIONS, QUESTION).iloc[0]
    both = primary_comparisons(table, CONDITIONS, QUESTION, per_image).iloc[0]
    assert seeds_only.n_images == 0 and both.n_images == 1000
    assert both.mean_difference == pytest.approx(seeds_only.mean_difference, abs=1e-12)
    assert both.image_variance > 0 and both.seed_variance == pytest.approx(seeds_only.seed_variance)
    assert both.ci_high - both.ci_low != seeds_only.ci_high - seeds_only.ci_low


def test_satterthwaite_degrees_of_freedom():
    seeds_only = PairedEstimate(0.1, 3, 0, 1e-4, 0.0)
    assert seeds_only.df == 2
    images_only = PairedEstimate(0.1, 3, 1000, 0.0, 1e-4)
    assert images_only.df == pytest.approx(999)
    mixed = PairedEstimate(0.1, 3, 1000, 1e-4, 1e-4)
    assert 2 < mixed.df < 999


def test_seeds_are_planned_at_the_strictest_holm_level_from_the_smallest_difference():
    one = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.60, 2: 0.62})
    two = pd.concat([one, one.assign(latent_dim=8, model=one.model + "x")], ignore_index=True)
    row = primary_comparisons(one, CONDITIONS, QUESTION).iloc[0]
    rows = primary_comparisons(two, CONDITIONS, QUESTION)
    differences = [0.020, 0.021, 0.022]  # 0.62 + 0.002 seed - (0.60 + 0.001 seed)
    sd = np.std(differences, ddof=1) * math.sqrt(2 / stats.chi2.ppf(0.2, 2))  # 80 % upper limit
    assert row.seeds_to_detect == seeds_to_detect(0.01, sd, 0.0, alpha=0.05)
    assert (rows.seeds_to_detect == seeds_to_detect(0.01, sd, 0.0, alpha=0.025)).all()
    assert (rows.seeds_for_equivalence == seeds_for_equivalence(0.01, sd, 0.0, alpha=0.025)).all()


def test_a_primary_metric_that_is_no_mean_over_images_is_conditional_on_the_test_set():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7})
    table["trustworthiness"] = 0.9 + 0.01 * table.depth + 0.001 * table.seed
    question = Question("trustworthiness", 0.005)
    no_column = dict.fromkeys(table.model)  # read_per_image: None, the file has no such column
    primary = primary_comparisons(table, CONDITIONS, question, no_column)
    assert primary.iloc[0].n_images == 0 and primary.iloc[0].image_variance == 0
    text = findings_markdown(
        table, depth_intervals(table, CONDITIONS), depth_comparisons(table, CONDITIONS), primary,
        CONDITIONS, LABELS, "sample",
    )  # fmt: skip
    assert "Intervals are 95 % over seeds only: conditional on this test set." in text
    assert "1 → 2 hidden layers: trustworthiness +0.01" in text
