"""Intervals, paired comparisons and findings on inputs with known answers."""

import math
import re
from html import unescape

import pandas as pd
import pytest

from layouts import COMPARISON_LAYOUT, INTERVAL_LAYOUT

from aedepth.findings import findings_markdown, headline, headline_rst
from aedepth.metrics import METRICS
from aedepth.stats import (
    Question,
    depth_comparisons,
    depth_intervals,
    effect_size,
    paired_estimate,
    paired_power,
    primary_comparisons,
    seeds_for_power,
    t_interval,
)

CONDITIONS = ["latent_dim"]  # a study without the arm and training axes


def without_axes(layout, axes=("arm", "training")):
    return [column for column in layout if column not in axes]


LABELS = {"depth": "depth", "latent_dim": "latent size", "seed": "seed"}


QUESTION = Question("knn_accuracy", 0.01)


def findings(table, conditions=CONDITIONS, dataset=None, question=QUESTION, omit=None):
    intervals = depth_intervals(table, conditions)
    models = table[table.method == "autoencoder"]
    comparisons = depth_comparisons(models, conditions)
    primary = primary_comparisons(models, conditions, question)
    return findings_markdown(
        table, intervals, comparisons, primary, conditions, LABELS, "sample", dataset, omit
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


def models_table(depth2_knn=(0.70, 0.73, 0.75)):
    rows = []
    for depth, knn, db in [
        (1, (0.60, 0.62, 0.64), (2.0, 2.1, 2.2)),
        (2, depth2_knn, (2.5, 2.6, 2.8)),
    ]:
        for seed in range(3):
            row = {m: 0.5 + 0.01 * seed for m in METRICS}  # identical shift: zero difference
            row |= {
                "method": "autoencoder",
                "latent_dim": 2,
                "depth": depth,
                "seed": seed,
                "knn_accuracy": knn[seed],
                "davies_bouldin": db[seed],
                "model": f"depth{depth}_dim2_seed{seed}",
                "epochs": 50,
                "early_stopping_patience": 0,
            }
            rows.append(row)
    return pd.DataFrame(rows)


def with_baselines(table):
    """`table` plus an unseeded baseline (one row) and a seeded one without reconstructions."""
    pca = {m: 0.4 for m in METRICS} | {"method": "pca", "latent_dim": 2}
    projections = [
        {m: 0.1 + 0.01 * seed for m in METRICS}
        | {"method": "random_projection", "latent_dim": 2, "seed": seed}
        | {"reconstruction_bce": math.nan, "reconstruction_mse": math.nan}
        for seed in range(3)
    ]
    return pd.concat([table, pd.DataFrame([pca, *projections])], ignore_index=True)


def test_depth_intervals():
    intervals = depth_intervals(models_table(), CONDITIONS)
    assert list(intervals.columns) == without_axes(INTERVAL_LAYOUT)
    assert len(intervals) == 2 * len(METRICS)
    knn1 = intervals[(intervals.depth == 1) & (intervals.metric == "knn_accuracy")].iloc[0]
    assert knn1["mean"] == pytest.approx(0.62) and knn1["n_seeds"] == 3
    assert knn1["ci_low"] == pytest.approx(0.62 - 4.302652729911275 * 0.02 / math.sqrt(3))


def test_baselines_get_intervals_by_name_over_their_seeds():
    intervals = depth_intervals(with_baselines(models_table()), CONDITIONS)
    pca = intervals[intervals.method == "pca"]
    assert len(pca) == len(METRICS) and pca["n_seeds"].eq(1).all()
    assert pca["ci_low"].isna().all() and pca["depth"].isna().all()
    projection = intervals[intervals.method == "random_projection"].set_index("metric")
    assert "reconstruction_bce" not in projection.index  # it cannot reconstruct: no row
    assert projection.loc["knn_accuracy", "n_seeds"] == 3
    assert projection.loc["knn_accuracy", "mean"] == pytest.approx(0.11)


def test_findings_name_every_baseline():
    text = findings(with_baselines(models_table()))
    assert "Baselines: pca, random_projection." in text
    assert "| 1 hidden layer(s), latent size 2 | n/a | 0.620 [" in text  # not "1.0"
    assert "| baseline pca, latent size 2 | n/a | 0.4 | 0.4 | 0.4 | 0.4 |" in text
    assert "| baseline random_projection, latent size 2 | n/a | 0.110 [0.085, 0.135] |" in text
    assert text.splitlines()[-1].startswith("| 2 | 1 → 2 | reconstruction_mse |")
    assert "- pca (latent size 2): 0.4 (this study)" in text  # the ceilings section


def test_depth_comparisons_are_paired_and_directional():
    comparisons = depth_comparisons(models_table(), CONDITIONS)
    assert list(comparisons.columns) == without_axes(COMPARISON_LAYOUT)
    comparisons = comparisons.set_index("metric")
    knn = comparisons.loc["knn_accuracy"]
    assert (knn["depth"], knn["previous_depth"], knn["n_pairs"]) == (2, 1, 3)
    assert knn["mean_difference"] == pytest.approx((0.10 + 0.11 + 0.11) / 3)
    assert knn["verdict"] == "better"
    assert comparisons.loc["davies_bouldin", "verdict"] == "worse"  # higher DB is worse
    assert comparisons.loc["silhouette", "verdict"] == "no clear difference"


def test_pairs_use_only_shared_seeds():
    table = models_table()
    table = table[~((table.depth == 2) & (table.seed == 0))]
    comparisons = depth_comparisons(table, CONDITIONS).set_index("metric")
    assert comparisons.loc["knn_accuracy", "n_pairs"] == 2
    assert comparisons.loc["knn_accuracy", "mean_difference"] == pytest.approx(0.11)


def test_findings_follow_the_numbers():
    text = findings(models_table())
    assert "Seeds trained: 3 (0, 1, 2)" in text
    assert "1 → 2 hidden layers: knn_accuracy +0.107 [0.092, 0.122] (95 % interval;" in text
    assert "  - class separation: knn_accuracy (the primary metric" in text
    assert "davies_bouldin +0.53 [0.08, 0.98], worse (lower is better)" in text
    assert not re.search(r"\bof \d+ metrics\b|\bon \d+ of\b", text)  # no counts of metrics

    other = findings(models_table(depth2_knn=(0.50, 0.52, 0.55)))
    assert other != text
    assert "knn_accuracy -0.097 [" in other
    assert "): worse by at least 0.01: the whole interval lies at or below -0.01." in other


def test_findings_with_one_seed_say_so():
    table = models_table()
    text = findings(table[table.seed == 0])
    assert "Seeds trained: 1 (0)" in text and "single seed" in text
    assert "(1 paired seed, 50 epochs): inconclusive: at least 2 paired seeds" in text


def table_headline(table, conditions=CONDITIONS, question=QUESTION):
    models = table[table.method == "autoencoder"]
    return headline(table, primary_comparisons(models, conditions, question), conditions, LABELS)


def test_the_headline_follows_the_numbers_and_findings_begin_with_it():
    # differences 0.10, 0.11, 0.11: t interval 0.1067 +- 4.303 * 0.005774 / sqrt(3), that is
    # [0.09232, 0.1210]: a half-width of 0.014 shows 3 decimals, the ends rounded outwards
    assert table_headline(models_table()) == [
        "1 → 2 hidden layers: knn_accuracy +0.107 [0.092, 0.122] (95 % interval; 3 paired "
        "seeds, 50 epochs): better by at least 0.01: the whole interval lies at or above +0.01."
    ]
    worse = models_table(depth2_knn=(0.50, 0.52, 0.55))
    assert table_headline(worse) == [
        "1 → 2 hidden layers: knn_accuracy -0.097 [-0.112, -0.082] (95 % interval; 3 paired "
        "seeds, 50 epochs): worse by at least 0.01: the whole interval lies at or below -0.01."
    ]
    # findings.md: its title, then the headline as bold bullets, then everything else
    lines = findings(worse).splitlines()
    assert lines[:4] == [
        "# Does depth improve the latent representation?",
        "",
        f"- **{table_headline(worse)[0]}**",
        "",
    ]
    assert lines[4].startswith(
        "Primary question: does knn_accuracy change by at least 0.01 (its own units) from one "
        "depth to the next? The step's interval is at 95 %, over seeds only"
    )
    assert lines[4].endswith("The chance that this verdict is false is at most 5 %.")
    assert "declared" not in lines[4]  # no record of when: nothing said about it


def test_the_headline_says_first_what_limits_the_answer():
    table = models_table()
    one_seed = table_headline(table[table.seed == 0])
    assert one_seed[0].startswith("With a single seed there is no interval, so no step can")
    assert one_seed[1:] == [
        "1 → 2 hidden layers: knn_accuracy +0.1, no interval (1 paired seed, 50 epochs): "
        "inconclusive: at least 2 paired seeds are needed for an interval."
    ]
    one_depth = table_headline(table[table.depth == 1])
    assert one_depth == ["Only one depth was trained, so there is nothing to compare."]


def test_headline_rst_shows_the_sentences_as_written():
    from docutils.core import publish_parts

    sentences = ["1 → 2 hidden layers (arm matched_params): better on 2 of 9 metrics.",
                 r"a *b* `c` d_ |e| [1]_ \ f"]  # fmt: skip
    html = publish_parts(headline_rst(sentences), writer="html")["body"]
    items = re.findall(r"<li>(.*?)</li>", html)
    assert [unescape(item) for item in items] == sentences


def test_comparisons_stay_within_one_latent_size():
    small = models_table()
    large = models_table(depth2_knn=(0.50, 0.52, 0.55)).assign(latent_dim=8)
    both = pd.concat([small, large])
    comparisons = depth_comparisons(both, CONDITIONS)
    knn = comparisons[comparisons.metric == "knn_accuracy"].set_index("latent_dim")
    assert knn.loc[2, "verdict"] == "better" and knn.loc[8, "verdict"] == "worse"
    assert len(depth_intervals(both, CONDITIONS)) == 4 * len(METRICS)
    text = findings(both)
    assert "- **1 → 2 hidden layers (latent size 8): knn_accuracy -0.097 [" in text
    assert "- **1 → 2 hidden layers (latent size 2): knn_accuracy +0.107 [" in text


def test_paired_p_value_matches_scipy_and_edge_cases():
    from scipy import stats

    def p(d):
        return paired_estimate(d).p_value()

    d = [0.1, 0.3, 0.2, 0.25]
    assert p(d) == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert math.isnan(p([0.1]))
    assert p([0.0, 0.0]) == 1.0
    # identical non-zero differences, up to rounding: t is infinite, p exactly 0
    assert p([0.272 - 0.258, 0.286 - 0.272]) == 0.0
    assert p([-0.01, -0.01, -0.01]) == 0.0
    assert math.isnan(effect_size([0.272 - 0.258, 0.286 - 0.272])[0])


def test_effect_size_and_its_interval():
    dz, low, high = effect_size([1.0, 2.0, 3.0])  # mean 2, sd 1
    assert dz == pytest.approx(2.0)
    assert low < 2.0 < high
    # large samples: close to the normal approximation dz +- 1.96 sqrt(1/n + dz^2 / (2n))
    rng = __import__("numpy").random.default_rng(0)
    d = rng.normal(0.5, 1.0, size=400)
    dz, low, high = effect_size(d)
    half = 1.959964 * math.sqrt(1 / 400 + dz**2 / 800)
    assert low == pytest.approx(dz - half, abs=0.01) and high == pytest.approx(dz + half, abs=0.01)
    assert all(math.isnan(v) for v in effect_size([0.3]))


def test_seeds_for_80_percent_power_known_values():
    # Cohen's tables / G*Power, paired t test, two-sided alpha 0.05, power 0.8
    assert seeds_for_power(0.5) == 34
    assert seeds_for_power(1.0) == 10
    assert seeds_for_power(-1.0) == 10
    assert paired_power(0.5, 34) >= 0.8 > paired_power(0.5, 33)
    assert math.isnan(seeds_for_power(0.0)) and math.isnan(seeds_for_power(math.nan))
    assert seeds_for_power(10.0) == 3 and paired_power(10.0, 2) < 0.8  # df = 1: t = 12.7


def test_comparisons_hold_bonferroni_intervals_verdicts_and_effects():
    comparisons = depth_comparisons(models_table(), CONDITIONS).set_index("metric")
    knn = comparisons.loc["knn_accuracy"]
    assert knn["p_adjusted"] == pytest.approx(min(1, 9 * knn["p_value"]))  # 9 metrics
    low, high = paired_estimate([0.10, 0.11, 0.11]).interval(1 - 0.05 / 9)
    assert (knn["confidence"], knn["ci_low"], knn["ci_high"]) == pytest.approx(
        (1 - 0.05 / 9, low, high)
    )
    assert knn["effect_size"] == pytest.approx(knn["mean_difference"] / 0.005773502691896)
    silhouette = comparisons.loc["silhouette"]  # identical shift: no difference at all
    assert silhouette["p_value"] == 1.0 and math.isnan(silhouette["effect_size"])


def test_the_simultaneous_interval_can_overturn_an_unadjusted_verdict():
    table = models_table(depth2_knn=(0.63, 0.66, 0.64))  # differences 0.03, 0.04, 0.00
    comparisons = depth_comparisons(table, CONDITIONS).set_index("metric")
    knn = comparisons.loc["knn_accuracy"]
    assert knn["p_value"] < 0.5 and knn["verdict"] == "no clear difference"
    assert knn["ci_low"] < 0 < knn["ci_high"]
    text = findings(table)
    assert "): inconclusive: the interval holds 0 and reaches -0.01 and +0.01; about " in text


def test_findings_state_levels_with_intervals_and_the_articles_claims():
    table = models_table()
    text = findings(table)
    assert "| 1 hidden layer(s), latent size 2 | n/a | 0.620 [0.570, 0.670] |" in text
    assert (
        "| knn_accuracy | higher | +0.107 [0.062, 0.152] | 99.44 % | 0.0088 | better | 18 [" in text
    )
    assert (
        "- Clearer clusters with depth (class separation, cluster agreement): 1 → 2 (latent "
        "size 2): not shown (better: knn_accuracy; worse: davies_bouldin; no clear difference: "
        "silhouette, calinski_harabasz, kmeans_ari, kmeans_nmi)." in text
    )
    assert "- Sharper reconstructions with depth (reconstruction): 1 → 2" in text
    every = models_table().assign(
        davies_bouldin=lambda t: 3.0 - t.depth - 0.01 * t.seed**2,
        **{m: (lambda m: lambda t: 0.1 * t.depth + 0.01 * t.seed**2)(m)
           for m in ("silhouette", "calinski_harabasz", "kmeans_ari", "kmeans_nmi")},
    )  # fmt: skip
    assert ": holds (every metric better)." in findings(every)
    gaps = table.assign(loss_gap=[0.01, 0.012, 0.011, 0.05, 0.06, 0.052])
    overfit = findings(gaps)
    (line,) = [x for x in overfit.splitlines() if x.startswith("- Overfitting with more depth")]
    assert line.endswith("the gap rises and the test loss is above the training loss: holds.")
    # the audit case: the gap rises from -0.068 to -0.058, the test loss still below the
    # training loss: that is no overfitting
    below = table.assign(loss_gap=[-0.068, -0.069, -0.067, -0.058, -0.059, -0.057])
    (line,) = [x for x in findings(below).splitlines() if x.startswith("- Overfitting")]
    assert "test - train loss -0.0680 [" in line and "→ -0.0580 [" in line
    assert line.endswith(
        "the gap rises and the test loss stays below the training loss: not shown."
    )
    published = findings(table, dataset="mnist")
    assert "UMAP 0.954" in published and "PCA 0.420" in published
    assert "UMAP 0.954" not in text


def test_findings_compare_the_arms():
    article = models_table().assign(arm="article")
    matched = models_table(depth2_knn=(0.61, 0.64, 0.62)).assign(arm="matched_params")
    both = pd.concat([article, matched], ignore_index=True)
    labels_before = dict(LABELS)
    LABELS["arm"] = "arm"
    try:
        text = findings(both, conditions=["latent_dim", "arm"])
    finally:
        LABELS.clear()
        LABELS.update(labels_before)
    assert "## Depth or capacity?" in text
    assert "the verdicts differ on knn_accuracy (article: better, matched_params: no clear " in text
    assert "they agree on the other metrics." in text


def test_findings_name_an_axis_only_where_it_is_not_at_its_omitted_value():
    table = models_table().assign(arm="article")
    conditions = ["latent_dim", "arm"]
    intervals = depth_intervals(table, conditions)
    comparisons = depth_comparisons(table, conditions)
    labels = LABELS | {"arm": "arm"}
    primary = primary_comparisons(table, conditions, QUESTION)
    plain = findings_markdown(
        table,
        intervals,
        comparisons,
        primary,
        conditions,
        labels,
        "sample",
        omit={"arm": "article"},
    )
    assert "arm article" not in plain and "| 1 hidden layer(s), latent size 2 |" in plain
    named = findings_markdown(table, intervals, comparisons, primary, conditions, labels, "sample")
    assert "| 1 hidden layer(s), latent size 2, arm article |" in named


def test_the_question_is_said_to_be_declared_before_training_only_where_the_record_shows_it():
    from aedepth.findings import provenance

    fresh = {"recorded_at": "2026-12-07T22:49:47+00:00", "models_trained_before": []}
    late = fresh | {"models_trained_before": ["depth1_dim2_seed0", "depth2_dim2_seed0"]}
    assert provenance(fresh) == (
        " Declared before any model of this study was trained (recorded 2026-12-07)."
    )
    assert provenance(late) == (
        " Recorded only after models were trained (on 2026-12-07, when 2 models existed): it "
        "may have been chosen with the results in view."
    )
    assert provenance(None) == ""  # no record: nothing said about when
    table = models_table()
    models = table[table.method == "autoencoder"]
    text = findings_markdown(
        table, depth_intervals(table, CONDITIONS), depth_comparisons(models, CONDITIONS),
        primary_comparisons(models, CONDITIONS, QUESTION), CONDITIONS, LABELS, "sample",
        question_record=late,
    )  # fmt: skip
    assert (
        "from one depth to the next? Recorded only after models were trained (on 2026-12-07" in text
    )
    assert "Declared before" not in text
