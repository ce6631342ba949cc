"""The primary question: the interval against scipy and a direct integral, power against
statsmodels, verdicts read off the printed interval, honest pair counts and digits, and the
headline that answers in the metric's units."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from layouts import PRIMARY_LAYOUT

from sentences import check_primary_sentence, check_secondary_part

from aedepth.findings import findings_markdown, headline, interval_text
from aedepth.jobs import UserFacingError
from aedepth.stats import (
    PRIMARY_VERDICTS,
    PairedEstimate,
    Question,
    depth_comparisons,
    depth_intervals,
    image_variance,
    paired_estimate,
    paired_power,
    pivot_coverage,
    pivot_half_width,
    primary_comparisons,
    primary_verdict,
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
@pytest.mark.parametrize("confidence", [0.95, 0.975, 0.9875])
def test_with_seeds_only_the_pivot_is_the_paired_t_interval_and_test(differences, confidence):
    estimate = paired_estimate(differences)
    expected = stats.ttest_1samp(differences, 0).confidence_interval(confidence)
    assert estimate.interval(confidence) == pytest.approx((expected.low, expected.high))
    assert estimate.p_value() == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)


def reference_coverage(h, seed_variance, image_variance, df):
    """P(|Z| sqrt(S df / U + V) <= h) integrated over U's chi-square density (scipy's quad),
    independent of the Gauss-Legendre rule over Z in aedepth.stats."""

    def inside(u):
        sd = math.sqrt(seed_variance * df / u + image_variance)
        return (2 * stats.norm.cdf(h / sd) - 1) * stats.chi2.pdf(u, df)

    return integrate.quad(inside, 0, np.inf, limit=400, epsabs=1e-12)[0]


@pytest.mark.parametrize("df", [1, 2, 4, 9])
@pytest.mark.parametrize(("seeds", "images"), [(1.0, 0.1), (1.0, 1.0), (0.1, 1.0), (1e-6, 1e-5)])
def test_the_pivots_coverage_and_half_width_match_a_direct_integral(df, seeds, images):
    for confidence in (0.95, 0.9875):
        half = pivot_half_width(seeds, images, df, confidence)
        assert reference_coverage(half, seeds, images, df) == pytest.approx(confidence, abs=1e-7)
    # between the t interval of the seeds' part and the normal one of the whole variance
    assert stats.norm.isf(0.025) * math.sqrt(seeds + images) < pivot_half_width(
        seeds, images, df, 0.95
    )


def test_a_p_value_is_below_a_exactly_where_the_interval_at_1_minus_a_excludes_0():
    estimate = PairedEstimate(0.004, 3, 400, 1e-6, 2e-6)
    p = estimate.p_value()
    assert 0 < p < 1
    for a in (0.8 * p, 1.25 * p):
        low, high = estimate.interval(1 - a)
        assert (low > 0) == (p < a)
    assert pivot_coverage(0.004, 1e-6, 2e-6, 2) == pytest.approx(1 - p)


def test_constant_differences_get_exact_answers_not_nan():
    moved = paired_estimate([0.02, 0.02, 0.02])
    assert moved.p_value() == 0.0 and moved.interval(0.95) == (0.02, 0.02)
    assert paired_estimate([0.0, 0.0]).p_value() == 1.0
    row = primary_verdict(*moved.interval(0.95), 0.01, True)
    assert row == "better by at least δ"


def test_image_variance_is_the_exact_bootstrap_variance_less_the_interaction():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.3, 2000)  # an image effect every seed shares
    x = 0.01 + shared + rng.normal(0, 0.2, (4, 2000))
    per_image = x.mean(axis=0)
    residual = x - x.mean(axis=1, keepdims=True) - per_image + x.mean()
    interaction = (residual**2).sum() / (3 * 1999) / (4 * 2000)
    assert image_variance(x) == pytest.approx(per_image.var(ddof=1) / 2000 - interaction)
    # what 20,000 bootstrap resamples of the images estimate, within their own noise
    picks = rng.integers(0, 2000, size=(20_000, 2000))
    boot = per_image[picks].mean(axis=1).var()
    assert per_image.var(ddof=1) / 2000 == pytest.approx(boot, rel=0.03)
    independent = rng.normal(0, 0.3, (4, 2000))  # no shared image effect: nothing to add
    assert image_variance(independent) < 0.2 * independent.mean(axis=0).var() / 2000


def test_more_seeds_cannot_beat_the_test_sets_own_noise():
    assert seeds_to_detect(0.01, sd=0.01, image_variance=0.0) == seeds_for_power(1.0)
    assert math.isnan(seeds_to_detect(0.01, sd=0.01, image_variance=0.01**2))
    assert math.isnan(seeds_for_equivalence(0.01, sd=0.01, image_variance=0.01**2))
    few = seeds_to_detect(0.01, sd=0.01, image_variance=1e-6)
    assert few > seeds_for_power(1.0)  # the image part costs seeds
    strict = seeds_to_detect(0.01, sd=0.01, alpha=0.05 / 4)
    assert strict > seeds_for_power(1.0)
    # a 95 % interval within ±margin at true 0: margin / se >= t(0.975) + t(0.9)
    n = seeds_for_equivalence(0.01, sd=0.01)
    threshold = [stats.t.isf(0.025, k - 1) + stats.t.isf(0.1, k - 1) for k in (n - 1, n)]
    assert math.sqrt(n - 1) < threshold[0] and math.sqrt(n) >= threshold[1]


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "verdict"),
    [
        (0.010, 0.02, True, "better by at least δ"),
        (-0.02, -0.010, True, "worse by at least δ"),
        (-0.02, -0.011, False, "better by at least δ"),
        (0.003, 0.013, True, "better, not shown to reach δ"),
        (0.003, 0.010, True, "better, not shown to reach δ"),  # holds +δ: not inside ±δ
        (-0.013, -0.003, False, "better, not shown to reach δ"),
        (0.0015, 0.0065, True, "no meaningful difference"),
        (-0.0099, 0.0099, True, "no meaningful difference"),
        (-0.0105, 0.0105, True, "inconclusive"),
        (-0.001, 0.02, True, "inconclusive"),
        (math.nan, math.nan, True, "inconclusive"),
    ],
)
def test_each_verdict_is_where_its_interval_lies(low, high, higher_is_better, verdict):
    assert primary_verdict(low, high, 0.01, higher_is_better) == verdict
    assert verdict in PRIMARY_VERDICTS


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
        assert row.n_pairs == pairs and math.isnan(row.ci_low)
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


def test_the_budget_and_models_still_improving_are_in_the_same_sentence():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7}, improving=True)
    (sentence,) = headline(
        table, primary_comparisons(table, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert (
        "(95 % interval; 3 paired seeds, 50 epochs, all 6 models still improving at the end)"
        in sentence
    )
    some = table.assign(still_improving=table.seed == 0)
    (sentence,) = headline(
        some, primary_comparisons(some, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert (
        "(95 % interval; 3 paired seeds, 50 epochs, 2 of its 6 models still improving at the end)"
        in sentence
    )
    stopped = models({1: [0, 1], 2: [0, 1]}, {1: 0.6, 2: 0.7}, patience=10)
    (sentence,) = headline(
        stopped, primary_comparisons(stopped, CONDITIONS, QUESTION), CONDITIONS, LABELS
    )
    assert "(95 % interval; 2 paired seeds, up to 300 epochs, early stopping)" in sentence


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


def test_seeds_are_planned_at_the_simultaneous_level_from_the_smallest_difference():
    one = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.60, 2: 0.62})
    two = pd.concat([one, one.assign(latent_dim=8, model=one.model + "x")], ignore_index=True)
    row = primary_comparisons(one, CONDITIONS, QUESTION).iloc[0]
    rows = primary_comparisons(two, CONDITIONS, QUESTION)
    differences = [0.020, 0.021, 0.022]  # 0.62 + 0.002 seed - (0.60 + 0.001 seed)
    sd = np.std(differences, ddof=1)
    upper = sd * math.sqrt(2 / stats.chi2.ppf(0.2, 2))  # its 80 % upper limit
    assert row.seeds_to_detect == seeds_to_detect(0.01, upper, 0.0, alpha=0.05)
    assert row.seeds_to_detect_observed == seeds_to_detect(0.01, sd, 0.0, alpha=0.05)
    assert (rows.seeds_to_detect == seeds_to_detect(0.01, upper, 0.0, alpha=0.025)).all()
    assert (rows.seeds_for_equivalence == seeds_for_equivalence(0.01, upper, 0.0, 0.025)).all()
    assert (
        rows.seeds_for_equivalence_observed == seeds_for_equivalence(0.01, sd, 0.0, 0.025)
    ).all()
    assert (rows.confidence == 0.975).all()


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
    assert (
        "The step's interval is at 95 %, over seeds only, conditional on this test set "
        "(trustworthiness is not a mean of independent per-image terms)." in text
    )
    assert "1 → 2 hidden layers: trustworthiness +0.01" in text


def steps_of(differences_by_step, seeds):
    """A models table of len(steps) + 1 depths whose per-seed step differences are given."""
    rows, level = [], np.full(len(seeds), 0.6)
    for depth in range(1, len(differences_by_step) + 2):
        if depth > 1:
            level = level + np.asarray(differences_by_step[depth - 2])
        for seed, value in zip(seeds, level):
            rows.append({"model": f"depth{depth}_dim2_seed{seed}", "method": "autoencoder",
                         "latent_dim": 2, "depth": depth, "seed": seed, "knn_accuracy": value,
                         "epochs": 50, "early_stopping_patience": 0, "still_improving": False})  # fmt: skip
    return pd.DataFrame(rows)


def around(mean, half, n, confidence=0.95):
    """n symmetric per-seed differences whose t interval at `confidence` is mean +- half."""
    shape = np.linspace(-1, 1, n)
    sd = half * math.sqrt(n) / stats.t.isf((1 - confidence) / 2, n - 1)
    return mean + shape * sd / shape.std(ddof=1)


def audit(table, delta=0.01):
    primary = primary_comparisons(table, CONDITIONS, Question("knn_accuracy", delta))
    sentences = headline(table, primary, CONDITIONS, LABELS)
    verdicts = [check_primary_sentence(s, delta, True, len(primary)) for s in sentences]
    assert verdicts == list(primary.verdict)
    return primary, sentences


def test_the_audit_cases_say_only_what_their_printed_intervals_show():
    # two steps, raw p 0.033 each: the 97.5 % intervals that decide are the ones printed
    t = stats.t.isf(0.033 / 2, 2)
    step = 0.02 + np.array([-1.0, 0.0, 1.0]) * 0.02 * math.sqrt(3) / t
    primary, sentences = audit(steps_of([step, step], [0, 1, 2]))
    assert primary.p_value.tolist() == pytest.approx([0.033, 0.033], rel=1e-6)
    assert set(primary.verdict) == {"inconclusive"} and (primary.confidence == 0.975).all()
    assert all("(97.5 % interval, 95 % for the 2 steps together; 3 paired seeds" in s
               for s in sentences)  # fmt: skip
    # 5 seeds, +0 +- 0.0105 at 95 %: not within ±0.01
    primary, (sentence,) = audit(steps_of([around(0.0, 0.0105, 5)], range(5)))
    assert primary.verdict.iloc[0] == "inconclusive"
    assert "[-0.011, 0.011]" in sentence and "reaches -0.01 and +0.01" in sentence
    # +0.008 [0.003, 0.013] with δ 0.01: better, but not shown to reach δ
    primary, (sentence,) = audit(steps_of([around(0.008, 0.005, 3)], range(3)))
    assert primary.verdict.iloc[0] == "better, not shown to reach δ"
    assert "+0.0080 [0.0030, 0.0130]" in sentence
    # +0.004 [0.0015, 0.0065]: inside ±δ, and a difference is detectable
    primary, (sentence,) = audit(steps_of([around(0.004, 0.0025, 3)], range(3)))
    assert primary.verdict.iloc[0] == "no meaningful difference"
    assert "(a difference is detectable, but smaller than 0.01)" in sentence
    # far beyond δ
    primary, (sentence,) = audit(steps_of([around(0.07, 0.012, 3)], range(3)))
    assert sentence.endswith("better by at least 0.01: the whole interval lies at or above +0.01.")


def test_digits_follow_the_standard_error_and_never_move_an_end_across_0_or_delta():
    assert interval_text(0.0707, 0.05882, 0.08258)[0] == "+0.071 [0.058, 0.083]"
    assert interval_text(0.002567, -0.02056, 0.0257)[0] == "+0.003 [-0.021, 0.026]"
    assert interval_text(1234.5, 900.2, 1568.8)[0] == "+1230 [900, 1570]"
    # two digits of the half-width would print 0.000 or 0.010: a digit more keeps the side
    text, low, high = interval_text(0.0101, 0.00004, 0.0202, 0.01)
    assert low > 0 and text == "+0.01010 [0.00004, 0.02020]"
    text, low, high = interval_text(0.015, 0.01002, 0.0200, 0.01)
    assert low >= 0.01 and text.endswith("[0.0100, 0.0200]")
    text, low, high = interval_text(0.005, -0.00001, 0.00999, 0.01)
    assert low <= 0 and high < 0.01


def test_secondary_verdicts_are_read_off_simultaneous_intervals_and_say_so():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7})
    table["reconstruction_mse"] = (
        0.05 + table.seed * 0.0002 + np.where(table.depth == 2, [0.0001, 0.00035, 0.0004] * 2, 0)
    )
    comparisons = depth_comparisons(table, CONDITIONS)
    assert np.allclose(comparisons.confidence, 1 - 0.05 / 3)  # knn, silhouette, mse
    text = findings_markdown(
        table, depth_intervals(table, CONDITIONS), comparisons,
        primary_comparisons(table, CONDITIONS, QUESTION), CONDITIONS, LABELS, "sample",
    )  # fmt: skip
    assert "Each step's 3 metrics are one family: each interval is at 98.33 %" in text
    parts = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("  - ")]
    for part in "; ".join(parts).split("; "):
        if "(the primary metric" not in part:
            check_secondary_part(part)


def test_silhouette_per_image_values_are_not_counted_as_independent_images():
    table = models({1: [0, 1, 2], 2: [0, 1, 2]}, {1: 0.6, 2: 0.7})
    table["silhouette"] = 0.3 + 0.02 * table.depth + 0.003 * table.seed
    rng = np.random.default_rng(3)
    per_image = {m: rng.normal(0.3, 0.2, 400) for m in table.model}
    question = Question("silhouette", 0.01)
    row = primary_comparisons(table, CONDITIONS, question, per_image).iloc[0]
    assert row.n_images == 0 and row.image_variance == 0  # seeds only
    knn = primary_comparisons(table, CONDITIONS, QUESTION, per_image).iloc[0]
    assert knn.n_images == 400  # kNN correctness is: each image's vote is its own
    text = findings_markdown(
        table, depth_intervals(table, CONDITIONS), depth_comparisons(table, CONDITIONS),
        primary_comparisons(table, CONDITIONS, question, per_image), CONDITIONS, LABELS, "sample",
    )  # fmt: skip
    assert "(silhouette is not a mean of independent per-image terms)" in text
