"""Uncertainty over seeds (and test images): the primary question, secondary comparisons,
intervals and the written findings.

The study declares one primary question before it runs (config `primary_metric` and
`smallest_difference`): does that metric change by at least the smallest difference that
matters from one depth to the next? Each depth step is answered from the paired differences
of the models that share a seed (and every other axis value, the "conditions"). Where the
metric is a mean over test images (aedepth.metrics.PER_IMAGE) its interval counts both
sources of noise: the seeds (Student t) and the test images (a paired bootstrap over them,
the same resampled images for every seed and both depths), joined by Satterthwaite's degrees
of freedom; other metrics are conditional on this test set. A step is "better"/"worse" when
its Holm-adjusted paired test says so, "no meaningful difference" when the equivalence test
(TOST) against the smallest difference does, else "inconclusive", with the seeds a decision
would take, planned from the smallest difference (Holm-aware), not from the observed effect.

Secondary results: every metric's paired t interval over seeds per step, Holm-adjusted over
the step's metrics, grouped by construct (aedepth.metrics.CONSTRUCTS), with the paired
effect size d_z and its exact noncentral-t interval. Baselines get intervals over their seeds
(none for an unseeded one) and appear in the findings beside the models, by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import re

import numpy as np
import pandas as pd
from scipy import optimize, stats

from aedepth.grid import ARM, AUTOENCODER, COMPARED, HEADLINE_METRICS, REGIME, REPLICATE
from aedepth.jobs import UserFacingError
from aedepth.metrics import CONSTRUCTS, METRICS

CONFIDENCE = 0.95
NA = "n/a"
ALPHA = 1 - CONFIDENCE  # the family-wise error rate of the Holm-adjusted verdicts
POWER = 0.8
MAX_SEEDS = 10_000  # a plan beyond this many seeds is reported as NaN ("more than 10000")
# Resamples of the test images in the primary interval; a fixed generator, so the interval is
# a function of the data alone (one config, one result).
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
# Planning uses the one-sided 80 % upper confidence limit of the seeds' sd, not the estimate
# itself (Browne 1995, Statistics in Medicine 14(17)): a few seeds' sd is often too small.
SD_UPPER_CONFIDENCE = 0.8
# The primary interval's degrees of freedom take the seeds' variance at this one-sided upper
# limit: the plain plug-in runs narrow when a few seeds' spread happens to be small. Measured
# coverage of the 95 % interval, 1,000 simulated studies each (3 seeds, 400 shared test
# images; tests/test_primary.py): plain 0.93-0.95, with this limit 0.944-0.967.
DF_UPPER_CONFIDENCE = 0.7
# Quantities compared beside the metrics, each a family of its own: the test - train loss gap
# at the kept epoch (higher is worse: the article's overfitting warning).
DIAGNOSTICS = {"loss_gap": False}
# The article's claims, and the constructs each is judged on.
CLAIMS = {
    "Clearer clusters with depth": ("class separation", "cluster agreement"),
    "Sharper reconstructions with depth": ("reconstruction",),
}
# Published 2-D MNIST embeddings, 5-NN fitted on train, scored on the 10k test images
# (Sainburg, McInnes & Gentner 2021, Neural Computation 33(11), their tables).
PUBLISHED_KNN = {
    "mnist": {
        "PCA": 0.420,
        "convolutional autoencoder": 0.793,
        "UMAP": 0.954,
        "parametric UMAP": 0.961,
        "t-SNE": 0.950,
    }
}
VERDICTS = ("better", "worse", "no clear difference")
PRIMARY_VERDICTS = ("better", "worse", "no meaningful difference", "inconclusive")
# Characters that start or end inline markup in reStructuredText (a backslash makes them text).
RST_MARKUP = re.compile(r"[\\`*_|\[\]]")


@dataclass(frozen=True)
class Question:
    """The declared primary question: does `metric` change by at least `smallest_difference`
    (in the metric's own units) from one depth to the next?"""

    metric: str
    smallest_difference: float

    @classmethod
    def from_config(cls, config: dict) -> "Question":
        return cls(config["primary_metric"], float(config["smallest_difference"]))


def interval_columns(conditions: list[str]) -> list[str]:
    return [
        "method",
        *conditions,
        COMPARED,
        "metric",
        "higher_is_better",
        "n_seeds",
        "mean",
        "ci_low",
        "ci_high",
    ]


def _step_columns(conditions: list[str]) -> list[str]:
    """The columns that name a depth step's row: its setting, the two depths, the metric."""
    return [*conditions, COMPARED, f"previous_{COMPARED}", "metric", "higher_is_better"]


def comparison_columns(conditions: list[str]) -> list[str]:
    return [
        *_step_columns(conditions),
        "n_pairs",
        "mean_difference",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "verdict",
        "effect_size",
        "effect_low",
        "effect_high",
    ]


def primary_columns(conditions: list[str]) -> list[str]:
    return [
        *_step_columns(conditions),
        "smallest_difference",
        "n_pairs",
        "n_seeds",
        "n_images",
        "mean_difference",
        "ci_low",
        "ci_high",
        "df",
        "seed_variance",
        "image_variance",
        "p_value",
        "p_holm",
        "equivalence_p",
        "equivalence_p_holm",
        "verdict",
        "seeds_to_detect",
        "seeds_for_equivalence",
        "epochs",
        "early_stopping_patience",
        "n_models",
        "still_improving",
    ]


def t_interval(values) -> tuple[float, float, float]:
    """(mean, low, high) of the 95 % t interval of the mean; NaN bounds for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df=len(values) - 1) * values.std(ddof=1)
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def _no_spread(d: np.ndarray) -> bool:
    """All differences equal, up to rounding (e.g. 0.272 - 0.258 twice): sd ~ 0."""
    return bool(d.std(ddof=1) <= 1e-9 * max(abs(d.mean()), 1e-300))


def paired_p_value(differences) -> float:
    """Two-sided p value of the paired t test (mean difference 0); NaN for fewer than 2 pairs.
    Identical differences (sd 0, up to rounding) leave the t statistic infinite: p is exactly
    1 when they are all 0 and exactly 0 otherwise (every seed moved by the same amount)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan
    if _no_spread(d):
        return 1.0 if d.mean() == 0 else 0.0
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    return float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of one family's p values (NaN entries are left out of the
    family and stay NaN): the i-th smallest of m is multiplied by m - i, then made monotone."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, (m - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def adjusted_verdict(mean: float, p_holm: float, higher_is_better: bool) -> str:
    """'better'/'worse' when the Holm-adjusted p value is below ALPHA, else no clear difference."""
    if math.isnan(p_holm) or p_holm >= ALPHA:
        return "no clear difference"
    return "better" if (mean > 0) == higher_is_better else "worse"


def effect_size(differences) -> tuple[float, float, float]:
    """Paired effect size d_z = mean / sd of the differences and its exact 95 % interval,
    found by inverting the noncentral t distribution of t = d_z * sqrt(n); NaN for fewer
    than 2 pairs or identical differences."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2 or _no_spread(d):
        return math.nan, math.nan, math.nan
    n, dz = len(d), float(d.mean() / d.std(ddof=1))
    t, df = dz * math.sqrt(n), n - 1
    span = 10 + 5 * abs(t)

    def cdf(c: float) -> float:  # nct.cdf(t; c) falls as c grows; NaN far out in a tail
        value = stats.nct.cdf(t, df, c)
        return (0.0 if c > t else 1.0) if math.isnan(value) else float(value)

    def ncp(probability: float) -> float:
        return optimize.brentq(lambda c: cdf(c) - probability, t - span, t + span, xtol=1e-10)

    tail = (1 - CONFIDENCE) / 2
    return dz, ncp(1 - tail) / math.sqrt(n), ncp(tail) / math.sqrt(n)


def t_test_power(ncp: float, df: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided t test at level `alpha` whose statistic is noncentral t(df, ncp).

    Both tails are upper tails, P(T > c | ncp) + P(T > c | -ncp): scipy's nct.cdf far in the
    lower tail returns NaN (df 1, ncp 11.3), which made power NaN and the seed search stop
    early; its sf, used this way, is finite (checked for n 2-200, d to 60)."""
    critical = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.sf(critical, df, -ncp))


def paired_power(dz: float, n: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t test at level `alpha` with n pairs, true effect d_z
    (statsmodels' TTestPower().power, finite for every n)."""
    return t_test_power(dz * math.sqrt(n), n - 1, alpha)


def _fewest_seeds(enough) -> float:
    """The smallest n in [2, MAX_SEEDS] with enough(n) (monotone in n), or NaN."""
    if not enough(MAX_SEEDS):
        return math.nan
    low, high = 2, MAX_SEEDS  # enough(high) holds
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return float(low)


def seeds_to_detect(
    difference: float,
    sd: float,
    image_variance: float = 0.0,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """The fewest paired seeds (>= 2) for which a two-sided paired test at level `alpha`
    detects a true `difference` with `power`, when the per-seed differences spread with `sd`
    and the test images add `image_variance` to the mean's variance (more seeds do not shrink
    it); NaN when more than MAX_SEEDS would be needed or no number would do."""
    if math.isnan(difference) or difference == 0 or math.isnan(sd):
        return math.nan

    def enough(n: int) -> bool:
        se = math.sqrt(sd**2 / n + image_variance)
        return se == 0 or t_test_power(abs(difference) / se, n - 1, alpha) >= power

    return _fewest_seeds(enough)


def seeds_for_power(dz: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The fewest seeds (pairs, >= 2) for which a paired t test detects d_z with `power`
    (statsmodels' TTestPower().solve_power rounded up); NaN when d_z is NaN or 0, or more
    than MAX_SEEDS would be needed."""
    return seeds_to_detect(dz, 1.0, 0.0, alpha, power)


def seeds_for_equivalence(
    margin: float,
    sd: float,
    image_variance: float = 0.0,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """The fewest paired seeds (>= 2) for which the equivalence test (TOST, level `alpha`)
    against +-`margin` succeeds with `power` when the true difference is 0: margin / se must
    reach t(1 - alpha) + t(1 - (1 - power) / 2) (Chow, Shao & Wang, Sample Size Calculations
    in Clinical Research, 10.1); NaN where more than MAX_SEEDS, or no number, would do."""
    if math.isnan(sd):
        return math.nan

    def enough(n: int) -> bool:
        se = math.sqrt(sd**2 / n + image_variance)
        needed = stats.t.isf(alpha, n - 1) + stats.t.isf((1 - power) / 2, n - 1)
        return se == 0 or margin / se >= needed

    return _fewest_seeds(enough)


def sd_upper_limit(differences, confidence: float = SD_UPPER_CONFIDENCE) -> float:
    """The one-sided upper confidence limit of the sd of `differences` (chi-square); NaN for
    fewer than 2."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan
    df = len(d) - 1
    return float(d.std(ddof=1) * math.sqrt(df / stats.chi2.ppf(1 - confidence, df)))


def image_variance(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> float:
    """The test images' share of the variance of the mean paired difference, from a
    (seeds, images) matrix of per-image differences: the paired bootstrap over test images
    (the same resampled images for every seed, as the test set is the same for all) of the
    seeds' mean, less the seed-by-image interaction that the seeds' own spread already counts
    (its two-way ANOVA mean square over seeds x images); never below 0."""
    x = np.asarray(differences, dtype=float)
    n_seeds, n_images = x.shape
    per_image = x.mean(axis=0)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, samples, 100):  # 100 x n indices at a time: 8 MB for 10,000 images
        picks = rng.integers(0, n_images, size=(min(100, samples - start), n_images))
        means.append(per_image[picks].mean(axis=1))
    boot = float(np.concatenate(means).var(ddof=1))
    if n_seeds < 2:
        return boot
    residual = x - x.mean(axis=1, keepdims=True) - per_image + x.mean()
    interaction = float((residual**2).sum()) / ((n_seeds - 1) * (n_images - 1))
    return max(0.0, boot - interaction / (n_seeds * n_images))


@dataclass(frozen=True)
class PairedEstimate:
    """A mean paired difference and the two parts of its variance: the seeds' (their spread
    over sqrt(n)) and the test images' (0 where there are no per-image values)."""

    mean: float
    n_pairs: int
    n_images: int  # 0: seeds only, conditional on this test set
    seed_variance: float
    image_variance: float

    @property
    def se(self) -> float:
        return math.sqrt(self.seed_variance + self.image_variance)

    @property
    def df(self) -> float:
        """Satterthwaite's degrees of freedom of the two parts (n_pairs - 1 for seeds alone),
        with the seeds' part at its DF_UPPER_CONFIDENCE upper limit."""
        total = self.seed_variance + self.image_variance
        if self.n_pairs < 2 or self.n_images < 2 or self.image_variance == 0 or total == 0:
            return float(self.n_pairs - 1)
        seed_df = self.n_pairs - 1
        seeds = self.seed_variance * seed_df / stats.chi2.ppf(1 - DF_UPPER_CONFIDENCE, seed_df)
        return (seeds + self.image_variance) ** 2 / (
            seeds**2 / seed_df + self.image_variance**2 / (self.n_images - 1)
        )

    def interval(self) -> tuple[float, float]:
        if self.n_pairs < 2:
            return math.nan, math.nan
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, self.df) * self.se
        return self.mean - half, self.mean + half

    def p_value(self) -> float:
        """Two-sided p of "no difference" (exactly 0 or 1 where nothing varies)."""
        if self.n_pairs < 2:
            return math.nan
        if self.se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.mean) / self.se, self.df))

    def equivalence_p(self, margin: float) -> float:
        """TOST: the larger of the one-sided p values of "difference <= -margin" and
        "difference >= margin" (exactly 0 or 1 where nothing varies)."""
        if self.n_pairs < 2:
            return math.nan
        if self.se == 0:
            return 0.0 if abs(self.mean) < margin else 1.0
        below = stats.t.sf((self.mean + margin) / self.se, self.df)
        above = stats.t.cdf((self.mean - margin) / self.se, self.df)
        return float(max(below, above))


def paired_estimate(
    differences, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> PairedEstimate:
    """From per-seed differences (n,), seeds only; or from per-image differences
    (seeds, images), whose row means are the per-seed differences, seeds and test images."""
    x = np.asarray(differences, dtype=float)
    per_seed = x.mean(axis=1) if x.ndim == 2 else x
    n = len(per_seed)
    if n == 0:  # no seed trained at both depths
        return PairedEstimate(math.nan, 0, 0, math.nan, 0.0)
    seeds = math.nan if n < 2 else 0.0 if _no_spread(per_seed) else float(per_seed.var(ddof=1) / n)
    images = image_variance(x, samples, seed) if x.ndim == 2 else 0.0
    return PairedEstimate(
        float(per_seed.mean()), n, x.shape[1] if x.ndim == 2 else 0, seeds, images
    )


def _groups(table: pd.DataFrame, keys: list[str]):
    """groupby over `keys` that keeps empty cells (a baseline has no depth) and no keys at all."""
    if not keys:
        yield (), table
        return
    for key, group in table.groupby(keys, sort=True, dropna=False):
        yield key, group


def depth_intervals(summary: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Mean and 95 % interval of every metric (and the loss gap) per method, condition and
    depth, over seeds."""
    refuse_duplicates(summary, conditions)
    rows = []
    for method, runs in summary.groupby("method", sort=False):
        for key, group in _groups(runs, [*conditions, COMPARED]):
            for metric, higher_is_better in (METRICS | DIAGNOSTICS).items():
                if metric not in group:
                    continue
                values = group[metric].dropna()
                if values.empty:  # e.g. reconstruction errors of a baseline that cannot
                    continue
                mean, low, high = t_interval(values)
                rows.append((method, *key, metric, higher_is_better, len(values), mean, low, high))
    return pd.DataFrame(rows, columns=interval_columns(conditions))


def refuse_duplicates(table: pd.DataFrame, conditions: list[str]) -> None:
    """One line when two rows share a method, conditions, depth and seed: they would count as
    extra pairs or seeds."""
    keys = [c for c in ("method", *conditions, COMPARED, REPLICATE) if c in table]
    twice = table[table.duplicated(keys, keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        named = ", ".join(f"{k} {_value(first[k])}" for k in keys if not pd.isna(first[k]))
        raise UserFacingError(
            f"the summary holds {int(twice.duplicated(keys).sum()) + 1} rows for {named}: "
            "each run once, please (delete summary.csv and run again)"
        )


def _paired_depths(models: pd.DataFrame, conditions: list[str]):
    """(condition key, rows of the setting, previous depth's rows, depth's rows) per depth
    step, each depth's rows indexed by seed."""
    for key, same in _groups(models, conditions):
        depths = sorted(int(d) for d in same[COMPARED].unique())
        by_depth = {d: same[same[COMPARED] == d].set_index(REPLICATE) for d in depths}
        for previous, depth in zip(depths, depths[1:]):
            yield key, by_depth[previous], by_depth[depth]


def depth_comparisons(models: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Each depth against the next smaller depth of the same conditions, paired over seeds;
    verdicts Holm-adjusted within each family (one step of one setting: all metrics; the loss
    gap alone)."""
    refuse_duplicates(models, conditions)
    rows = []
    for key, old, new in _paired_depths(models, conditions):
        depth, previous = int(new[COMPARED].iloc[0]), int(old[COMPARED].iloc[0])
        shared = new.index.intersection(old.index).sort_values()
        for family in (METRICS, DIAGNOSTICS):
            family_rows = []
            for metric, higher_is_better in family.items():
                if metric not in new:
                    continue
                differences = (new.loc[shared, metric] - old.loc[shared, metric]).dropna()
                mean, low, high = t_interval(differences)
                dz, dz_low, dz_high = effect_size(differences)
                family_rows.append(
                    [
                        *key,
                        depth,
                        previous,
                        metric,
                        higher_is_better,
                        len(differences),
                        mean,
                        low,
                        high,
                        paired_p_value(differences),
                        math.nan,  # p_holm, below
                        "",  # verdict, below
                        dz,
                        dz_low,
                        dz_high,
                    ]
                )
            at = len(key) + 8  # the p_value column
            for row, adjusted in zip(family_rows, holm([r[at] for r in family_rows])):
                row[at + 1] = adjusted
                row[at + 2] = adjusted_verdict(row[len(key) + 5], adjusted, row[len(key) + 3])
            rows += family_rows
    return pd.DataFrame(rows, columns=comparison_columns(conditions))


def primary_comparisons(
    models: pd.DataFrame,
    conditions: list[str],
    question: Question,
    per_image: dict[str, np.ndarray] | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """The primary question per depth step and setting: the mean paired difference of the
    primary metric with its interval over seeds and, where `per_image` holds the metric's
    per-image values by model id, over test images too; the Holm-adjusted difference and
    equivalence tests over all steps; and the seeds a decision would take."""
    refuse_duplicates(models, conditions)
    metric, margin = question.metric, question.smallest_difference
    rows = []
    for key, old, new in _paired_depths(models, conditions):
        shared = [
            seed
            for seed in new.index.intersection(old.index).sort_values()
            if not (pd.isna(new.loc[seed, metric]) or pd.isna(old.loc[seed, metric]))
        ]
        estimate = paired_estimate(
            _primary_differences(old, new, shared, metric, per_image), samples
        )
        low, high = estimate.interval()
        compared = pd.concat([old.loc[shared], new.loc[shared]])
        rows.append(
            {
                **dict(zip(conditions, key)),
                COMPARED: int(new[COMPARED].iloc[0]),
                f"previous_{COMPARED}": int(old[COMPARED].iloc[0]),
                "metric": metric,
                "higher_is_better": METRICS[metric],
                "smallest_difference": margin,
                "n_pairs": estimate.n_pairs,
                "n_seeds": len(new.index.union(old.index)),
                "n_images": estimate.n_images,
                "mean_difference": estimate.mean,
                "ci_low": low,
                "ci_high": high,
                "df": estimate.df,
                "seed_variance": estimate.seed_variance,
                "image_variance": estimate.image_variance,
                "p_value": estimate.p_value(),
                "equivalence_p": estimate.equivalence_p(margin),
                "sd_upper": sd_upper_limit(
                    [new.loc[s, metric] - old.loc[s, metric] for s in shared]
                ),
                **_budget(pd.concat([old, new]), compared),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=primary_columns(conditions))
    return _primary_decisions(table, margin)[primary_columns(conditions)]


def _primary_differences(old, new, shared, metric, per_image) -> np.ndarray:
    """Per-image differences (seeds, images) where every compared model has them, else the
    per-seed differences of the summary."""
    if per_image is not None and shared:
        pairs = [
            (per_image.get(new.loc[s, "model"]), per_image.get(old.loc[s, "model"])) for s in shared
        ]
        if all(a is not None and b is not None and len(a) == len(b) for a, b in pairs):
            return np.stack([a - b for a, b in pairs])
    return np.array([new.loc[s, metric] - old.loc[s, metric] for s in shared], dtype=float)


def _budget(setting: pd.DataFrame, compared: pd.DataFrame) -> dict:
    """The training budget of the setting's models at both depths, and how many of the
    compared ones were still improving."""

    def first(column):
        values = setting[column].dropna() if column in setting else pd.Series(dtype=float)
        return int(values.iloc[0]) if len(values) else math.nan

    improving = (
        int(compared["still_improving"].fillna(False).astype(bool).sum())
        if "still_improving" in compared
        else 0
    )
    return {
        "epochs": first("epochs"),
        "early_stopping_patience": first("early_stopping_patience"),
        "n_models": len(compared),
        "still_improving": improving,
    }


def _primary_decisions(table: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Holm over every step's difference test and, apart, every equivalence test; verdicts;
    the seeds each step would need, planned at the strictest Holm level (ALPHA / tests)."""
    table["p_holm"] = holm(table["p_value"])
    table["equivalence_p_holm"] = holm(table["equivalence_p"])
    table["verdict"] = [_primary_verdict(row) for row in table.itertuples()]
    alpha = ALPHA / len(table)
    table["seeds_to_detect"] = [
        seeds_to_detect(margin, row.sd_upper, row.image_variance, alpha)
        for row in table.itertuples()
    ]
    table["seeds_for_equivalence"] = [
        seeds_for_equivalence(margin, row.sd_upper, row.image_variance, alpha)
        for row in table.itertuples()
    ]
    return table


def _primary_verdict(row) -> str:
    if row.n_pairs < 2 or math.isnan(row.p_holm):
        return "inconclusive"
    if row.equivalence_p_holm < ALPHA:
        return "no meaningful difference"
    if row.p_holm < ALPHA:
        return "better" if (row.mean_difference > 0) == row.higher_is_better else "worse"
    return "inconclusive"


def _value(value) -> str:
    """An axis value as written in config.yaml: 2, not the 2.0 of a column with empty cells."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _setting(row, conditions: list[str], labels: dict[str, str]) -> str:
    """e.g. "latent size 2"; empty cells (an axis a baseline does not use) left out."""
    parts = [
        f"{labels.get(c, c)} {_value(getattr(row, c))}"
        for c in conditions
        if not pd.isna(getattr(row, c))
    ]
    return ", ".join(parts)


def _level(row) -> str:
    if math.isnan(row.ci_low):
        return f"{row.mean:.4g}"
    return f"{row.mean:.4g} [{row.ci_low:.4g}, {row.ci_high:.4g}]"


def _model_levels(intervals: pd.DataFrame, conditions: list[str]) -> dict[tuple, object]:
    """(condition values as text..., depth, metric) -> the interval row of the models."""
    models = intervals[intervals["method"] == AUTOENCODER]
    return {
        (*(_value(getattr(r, c)) for c in conditions), int(getattr(r, COMPARED)), r.metric): r
        for r in models.itertuples()
    }


def _step(row) -> str:
    return f"{getattr(row, f'previous_{COMPARED}')} → {getattr(row, COMPARED)}"


def _claim(group: pd.DataFrame, constructs: tuple[str, ...]) -> str:
    """How one step's verdicts bear on a claim that depth improves `constructs`: it holds
    only when every one of their metrics is better; which metrics disagree, by name."""
    metrics = [m for c in constructs for m in CONSTRUCTS[c]]
    verdicts = dict(zip(group["metric"], group["verdict"]))
    by_verdict = {v: [m for m in metrics if verdicts.get(m) == v] for v in VERDICTS}
    present = [m for m in metrics if m in verdicts]
    if present and len(by_verdict["better"]) == len(present):
        return "holds (every metric better)"
    if present and len(by_verdict["worse"]) == len(present):
        return "contradicted (every metric worse)"
    named = "; ".join(f"{v}: {', '.join(ms)}" for v, ms in by_verdict.items() if ms)
    return f"not shown ({named})" if named else "not shown (no metric scored)"


def _agreement(
    comparisons: pd.DataFrame, conditions: list[str], axis: str, labels: dict[str, str]
) -> list[str]:
    """Per depth step (and the other conditions): do the verdicts agree across `axis`'s values?"""
    others = [c for c in conditions if c != axis]
    values = list(dict.fromkeys(_value(v) for v in comparisons[axis]))
    lines = []
    for _, group in _groups(comparisons, [*others, f"previous_{COMPARED}", COMPARED]):
        first = next(group.itertuples())
        setting = _setting(first, others, labels)
        by_metric = {
            metric: {_value(getattr(r, axis)): r.verdict for r in rows.itertuples()}
            for metric, rows in group.groupby("metric", sort=False)
        }
        differ = [
            f"{metric} ({', '.join(f'{v}: {verdicts.get(v, NA)}' for v in values)})"
            for metric, verdicts in by_metric.items()
            if len(set(verdicts.values())) > 1 or len(verdicts) < len(values)
        ]
        where = f" ({setting})" if setting else ""
        lines.append(
            f"- {_step(first)} hidden layers{where}: "
            + (
                f"the verdicts differ on {'; '.join(differ)}; they agree on the other metrics."
                if differ
                else "the verdicts agree on every metric."
            )
        )
    return lines


def _shown(models: pd.DataFrame, conditions: list[str], omit: dict | None) -> list[str]:
    """The conditions sentences name: all but those where every model has the omitted value
    (a study of the article arm alone need not say "arm article" everywhere); the tables keep
    every column."""
    omit = omit or {}
    return [
        c
        for c in conditions
        if not (c in omit and c in models and (models[c].astype(str) == str(omit[c])).all())
    ]


def headline(
    summary: pd.DataFrame,
    primary: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    omit: dict | None = None,
) -> list[str]:
    """The answer in a few plain sentences (no markup): findings.md begins with them and the
    report's home page shows them. One per depth step (and setting), answering the primary
    question in the metric's units: the difference and its interval, the paired seeds it rests
    on and the training budget, then the verdict; first, that a single seed cannot call any
    difference clear; or that only one depth was trained."""
    if primary.empty:
        return ["Only one depth was trained, so there is nothing to compare."]
    models = summary[summary["method"] == AUTOENCODER]
    sentences = []
    if models[REPLICATE].nunique() < 2:
        sentences.append(
            "With a single seed no difference can be called clear: "
            "add seeds (e.g. --config seeds=[0,1,2]) to answer the question."
        )
    shown = _shown(models, conditions, omit)
    several = len(list(_groups(primary, conditions))) > 1
    for row in primary.itertuples():
        sentences.append(f"{_step_in_setting(row, shown, labels, several)}: {_primary_answer(row)}")
    return sentences


def _number(value: float) -> str:
    return f"{value:.4g}"


def _primary_answer(row) -> str:
    """e.g. "knn_accuracy +0.127 [0.123, 0.130] (3 paired seeds, 50 epochs): better." """
    if row.n_pairs == 0:
        measured = f"{row.metric}: no seed trained at both depths"
    elif math.isnan(row.ci_low):
        measured = f"{row.metric} {row.mean_difference:+.4g}, no interval"
    else:
        measured = (
            f"{row.metric} {row.mean_difference:+.4g} "
            f"[{_number(row.ci_low)}, {_number(row.ci_high)}]"
        )
    return f"{measured} ({_pairs(row)}, {_budget_text(row)}): {_primary_outcome(row)}."


def _pairs(row) -> str:
    """How many paired seeds, flagged where seeds lack a partner or there are too few."""
    text = f"{row.n_pairs} paired seed{'s' if row.n_pairs != 1 else ''}"
    if row.n_pairs < row.n_seeds:
        text = f"only {text} of the {row.n_seeds} seeds trained at these depths"
    return text


def _budget_text(row) -> str:
    if pd.isna(row.epochs):
        return "training budget unknown"
    text = f"{int(row.epochs)} epoch{'s' if row.epochs != 1 else ''}"
    if not pd.isna(row.early_stopping_patience) and row.early_stopping_patience > 0:
        text = f"up to {text}, early stopping"
    if row.still_improving:
        share = (
            f"all {row.n_models}"
            if row.still_improving == row.n_models
            else f"{row.still_improving} of its {row.n_models}"
        )
        text += f", {share} models still improving at the end"
    return text


def _primary_outcome(row) -> str:
    margin = f"±{row.smallest_difference:g}"
    if row.verdict in ("better", "worse"):
        return row.verdict
    if row.verdict == "no meaningful difference":
        return f"within {margin}: no meaningful difference"
    if row.n_pairs < 2:
        return "inconclusive: at least 2 paired seeds are needed for an interval"
    if math.isnan(row.seeds_to_detect) and math.isnan(row.seeds_for_equivalence):
        return (
            f"inconclusive: the interval neither excludes 0 nor lies within {margin}, and "
            f"no number of seeds up to {MAX_SEEDS} would decide"
        )
    return (
        f"inconclusive: the interval neither excludes 0 nor lies within {margin}; about "
        f"{_seeds(row.seeds_to_detect)} seeds would show a difference of "
        f"{row.smallest_difference:g} ({_seeds(row.seeds_for_equivalence)} to show there is none)"
    )


def _seeds(count: float) -> str:
    return f"more than {MAX_SEEDS}" if math.isnan(count) else f"{count:.0f}"


def _step_in_setting(row, shown: list[str], labels: dict[str, str], several: bool) -> str:
    """e.g. "1 → 2 hidden layers (latent size 8)"; the setting only where there are several."""
    setting = _setting(row, shown, labels)
    return f"{_step(row)} hidden layers{f' ({setting})' if several and setting else ''}"


def headline_rst(sentences: list[str]) -> str:
    """The headline as a reStructuredText bullet list, its text escaped (the report's home page
    includes it)."""
    return "".join("- " + RST_MARKUP.sub(r"\\\g<0>", s) + "\n" for s in sentences)


@dataclass
class _Study:
    """What every section of findings.md reads: the tables and how to name a setting."""

    summary: pd.DataFrame
    intervals: pd.DataFrame
    comparisons: pd.DataFrame
    primary: pd.DataFrame
    conditions: list[str]
    labels: dict[str, str]
    omit: dict | None

    def __post_init__(self):
        self.models = self.summary[self.summary["method"] == AUTOENCODER]
        self.shown = _shown(self.models, self.conditions, self.omit)
        self.levels = _model_levels(self.intervals, self.conditions)
        is_metric = self.comparisons["metric"].isin(list(METRICS))
        self.metric_rows = self.comparisons[is_metric]
        self.gap_rows = self.comparisons[~is_metric]

    def setting(self, row) -> str:
        """ " (latent size 2, ...)" for a row, or "" where nothing needs naming."""
        text = _setting(row, self.shown, self.labels)
        return f" ({text})" if text else ""

    def steps(self, rows: pd.DataFrame):
        """The groups of `rows` per setting and depth step."""
        return _groups(rows, [*self.conditions, f"previous_{COMPARED}", COMPARED])

    def level_at(self, row, depth_column: str, metric: str):
        key = tuple(_value(getattr(row, c)) for c in self.conditions)
        return self.levels.get((*key, int(getattr(row, depth_column)), metric))


def findings_markdown(
    summary: pd.DataFrame,
    intervals: pd.DataFrame,
    comparisons: pd.DataFrame,
    primary: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    data: str,
    dataset: str | None = None,
    omit: dict | None = None,
) -> str:
    """A short written answer to "does depth improve the latent representation?".

    Every sentence is derived from the tables; nothing here is fixed text about results
    (but the published reference points of `dataset`, which are cited as such).
    """
    study = _Study(summary, intervals, comparisons, primary, conditions, labels, omit)
    lines = _introduction(study, data)
    if not comparisons.empty:
        lines += _secondary(study) + _agreements(study) + _article_claims(study)
    lines += _convergence(study) + _ceilings(study, dataset) + _levels_table(study)
    if not comparisons.empty:
        lines += _primary_table(study) + _differences_table(study)
    return "\n".join(lines) + "\n"


def _introduction(study: _Study, data: str) -> list[str]:
    """The headline sentences, the declared question, then what the answer rests on."""
    seeds = sorted(int(s) for s in study.models[REPLICATE].unique())
    depths = sorted(int(d) for d in study.models[COMPARED].unique())
    baselines = [m for m in study.summary["method"].unique() if m != AUTOENCODER]
    sentences = headline(study.summary, study.primary, study.conditions, study.labels, study.omit)
    return [
        "# Does depth improve the latent representation?",
        "",
        *(f"- **{sentence}**" for sentence in sentences),
        "",
        *_question(study),
        f"Data: {data}. Depths compared: {', '.join(map(str, depths))}. "
        f"Seeds trained: {len(seeds)} ({', '.join(map(str, seeds))}); a comparison pairs "
        "the models of two depths that share a seed, and each sentence names its pairs. "
        f"Baselines: {', '.join(baselines) if baselines else 'none'}.",
        "",
    ]


def _question(study: _Study) -> list[str]:
    """The declared primary question and how it is answered."""
    if study.primary.empty:
        return []
    first = next(study.primary.itertuples())
    noise = (
        "over seeds and over test images (a paired bootstrap over the "
        f"{first.n_images:,} test images, joined with the seeds' t interval)"
        if first.n_images
        else "over seeds only: conditional on this test set"
    )
    return [
        f"Primary question, declared in the config before the study ran: does {first.metric} "
        f"change by at least {first.smallest_difference:g} (its own units) from one depth to "
        f'the next? Intervals are 95 % {noise}. "Better" or "worse" is the paired '
        "test's verdict and \"no meaningful difference\" the equivalence test's (TOST against "
        f"±{first.smallest_difference:g}), each Holm-adjusted over the {len(study.primary)} "
        f"primary test{'s' if len(study.primary) != 1 else ''} (family-wise error rate "
        f"{ALPHA:.0%}); the seeds a decision would take are planned from the smallest "
        "difference, not from the observed effect.",
        "",
    ]


def _secondary(study: _Study) -> list[str]:
    """Per depth step, each construct's metrics: difference, interval, verdict."""
    lines = [
        "## Secondary results by construct",
        "",
        "Paired differences (deeper minus shallower) over seeds, conditional on this test set; "
        "verdicts Holm-adjusted over the step's metrics.",
        "",
    ]
    several = len(list(_groups(study.metric_rows, study.conditions))) > 1
    primary = set(study.primary["metric"])
    for _, group in study.steps(study.metric_rows):
        first = next(group.itertuples())
        lines.append(f"- {_step_in_setting(first, study.shown, study.labels, several)}:")
        rows = {row.metric: row for row in group.itertuples()}
        for construct, metrics in CONSTRUCTS.items():
            parts = [
                f"{m} (the primary metric: its answer, with test-image noise, is above)"
                if m in primary
                else _difference_part(rows[m])
                for m in metrics
                if m in rows
            ]
            if parts:
                lines.append(f"  - {construct}: {'; '.join(parts)}")
    return lines


def _difference_part(row) -> str:
    """e.g. "silhouette +0.02 [-0.01, 0.05], no clear difference (higher is better)"."""
    interval = "" if math.isnan(row.ci_low) else f" [{_number(row.ci_low)}, {_number(row.ci_high)}]"
    direction = "higher" if row.higher_is_better else "lower"
    return (
        f"{row.metric} {row.mean_difference:+.4g}{interval}, {row.verdict} ({direction} is better)"
    )


def _agreements(study: _Study) -> list[str]:
    """Whether the verdicts agree between arms, and between training regimes."""
    lines = []
    for axis, title in (
        (ARM, "## Depth or capacity? (the article's widths against matched parameter counts)"),
        (REGIME, "## Does each verdict survive training to convergence?"),
    ):
        if axis in study.conditions and study.metric_rows[axis].nunique() > 1:
            lines += ["", title, ""] + _agreement(
                study.metric_rows, study.shown, axis, study.labels
            )
    return lines


def _article_claims(study: _Study) -> list[str]:
    """The article's claims (clusters, reconstructions, overfitting) against the verdicts."""
    lines = ["", "## The article's claims", ""]
    for claim, constructs in CLAIMS.items():
        steps = [
            f"{_step(first := next(g.itertuples()))}{study.setting(first)}: {_claim(g, constructs)}"
            for _, g in study.steps(study.metric_rows)
        ]
        lines.append(f"- {claim} ({', '.join(constructs)}): " + "; ".join(steps) + ".")
    if study.gap_rows.empty:
        return lines
    steps = []
    for row in study.gap_rows.itertuples():
        old = study.level_at(row, f"previous_{COMPARED}", row.metric)
        new = study.level_at(row, COMPARED, row.metric)
        holds = {"worse": "holds", "better": "contradicted"}.get(row.verdict, "not shown")
        steps.append(
            f"{_step(row)}{study.setting(row)}: gap "
            f"{_level(old) if old else 'n/a'} → {_level(new) if new else 'n/a'}, {holds}"
        )
    lines.append(
        "- Overfitting with more depth (test minus train loss at the kept epoch grows): "
        + "; ".join(steps)
        + "."
    )
    return lines


def _convergence(study: _Study) -> list[str]:
    """How many seeds per depth were still improving at their last epoch."""
    models = study.models
    if "still_improving" not in models or not models["still_improving"].notna().any():
        return []
    lines = ["", "## Trained enough?", ""]
    for _, group in _groups(models, [*study.conditions, COMPARED]):
        first = next(group.itertuples())
        improving = int(group["still_improving"].fillna(False).astype(bool).sum())
        lines.append(
            f"- {_value(getattr(first, COMPARED))} hidden layer(s){study.setting(first)}: "
            f"{improving} of {len(group)} seeds still "
            "improving at their last epoch (held-out loss slope over the last 10 epochs "
            f"{group['val_slope_last10'].mean():.3g} per epoch)"
        )
    if models["still_improving"].fillna(False).astype(bool).any():
        lines.append(
            "\nModels still improving were not trained to convergence: rerun with the "
            "`converged` training regime (`--config trainings=[fixed,converged]`) to see "
            "whether the verdicts survive."
        )
    return lines


def _ceilings(study: _Study, dataset: str | None) -> list[str]:
    """The baselines' kNN accuracy, the best autoencoder's, and the published ones."""
    intervals = study.intervals
    knn = intervals[(intervals["metric"] == "knn_accuracy") & (intervals["method"] != AUTOENCODER)]
    published = PUBLISHED_KNN.get(dataset or "", {})
    if knn.empty and not published:
        return []
    lines = ["", "## Reference ceilings (kNN accuracy of 2-D embeddings)", ""]
    for row in knn.itertuples():
        lines.append(f"- {row.method}{study.setting(row)}: {_level(row)} (this study)")
    best = intervals[(intervals["method"] == AUTOENCODER) & (intervals["metric"] == "knn_accuracy")]
    if not best.empty:
        top = next(best.loc[[best["mean"].idxmax()]].itertuples())
        lines.append(
            f"- best autoencoder: {_level(top)} at {_value(getattr(top, COMPARED))} hidden layer(s)"
            + study.setting(top)
        )
    if published:
        lines.append(
            "- published, full "
            + f"{dataset} (Sainburg, McInnes & Gentner 2021, Neural Computation 33(11)): "
            + ", ".join(f"{name} {value:.3f}" for name, value in published.items())
        )
    return lines


def _levels_table(study: _Study) -> list[str]:
    """Mean and interval of the headline metrics per model setting and baseline."""
    conditions, models = study.conditions, study.models
    level_metrics = [m for m in HEADLINE_METRICS if m in set(study.intervals["metric"])]
    params = (
        models.groupby([*conditions, COMPARED], dropna=False)["params"].first()
        if "params" in models
        else None
    )
    lines = [
        "",
        "## Levels (test split; mean and 95 % interval over seeds)",
        "",
        "| run | parameters | " + " | ".join(level_metrics) + " |",
        "| --- | --- |" + " --- |" * len(level_metrics),
    ]
    for _, group in _groups(study.intervals, ["method", *conditions, COMPARED]):
        first = next(group.itertuples())
        setting = _setting(first, study.shown, study.labels)
        count = "n/a"
        if first.method == AUTOENCODER:
            name = f"{_value(getattr(first, COMPARED))} hidden layer(s)"
            key = (*(getattr(first, c) for c in conditions), getattr(first, COMPARED))
            if params is not None and key in params.index:
                count = f"{int(params.loc[key]):,}"
        else:
            name = f"baseline {first.method}"
        table = group.set_index("metric")
        cells = [
            _level(next(table.loc[[m]].itertuples())) if m in table.index else "n/a"
            for m in level_metrics
        ]
        lines.append(
            f"| {name}{', ' + setting if setting else ''} | {count} | " + " | ".join(cells) + " |"
        )
    return lines


def _table_head(study: _Study, title: str, columns: list[str]) -> list[str]:
    """A table's title, then its header: the condition columns, then `columns`."""
    cells = [*(study.labels.get(c, c) for c in study.conditions), *columns]
    return ["", title, "", "| " + " | ".join(cells) + " |", "|" + " --- |" * len(cells)]


def _primary_table(study: _Study) -> list[str]:
    """The primary question per step: both tests, the noise parts and the seeds to decide."""
    conditions = study.conditions
    lines = _table_head(
        study,
        "## Primary question in detail",
        ["depths", "pairs", "mean difference", "95 % interval", "Holm p (difference)",
         "Holm p (equivalence)", "verdict", "seed part of the variance", "image part",
         "seeds to show the smallest difference", "seeds to show none"],
    )  # fmt: skip
    for row in study.primary.itertuples():
        values = "".join(f"{_value(getattr(row, c))} | " for c in conditions)
        interval = (
            "n/a" if math.isnan(row.ci_low) else f"[{_number(row.ci_low)}, {_number(row.ci_high)}]"
        )
        cells = [
            f"{row.n_pairs}",
            f"{row.mean_difference:+.4g}",
            interval,
            *(NA if math.isnan(p) else f"{p:.3g}" for p in (row.p_holm, row.equivalence_p_holm)),
            row.verdict,
            *(NA if math.isnan(v) else f"{v:.3g}" for v in (row.seed_variance, row.image_variance)),
            *(
                _seeds(n) if row.n_pairs >= 2 else NA
                for n in (row.seeds_to_detect, row.seeds_for_equivalence)
            ),
        ]
        lines.append(f"| {values}{_step(row)} | " + " | ".join(cells) + " |")
    return lines


def _differences_table(study: _Study) -> list[str]:
    """Every paired comparison over seeds: difference, interval, Holm p, verdict, d_z."""
    conditions = study.conditions
    lines = _table_head(
        study,
        "## Paired differences over seeds (deeper minus shallower)",
        ["depths", "metric", "better if", "mean difference", "95 % interval", "Holm p",
         "verdict", "d_z [95 %]"],
    )  # fmt: skip
    for row in study.comparisons.itertuples():
        interval = "n/a" if math.isnan(row.ci_low) else f"[{row.ci_low:.4g}, {row.ci_high:.4g}]"
        values = "".join(f"{_value(getattr(row, c))} | " for c in conditions)
        effect = (
            "n/a"
            if math.isnan(row.effect_size)
            else f"{row.effect_size:.3g} [{row.effect_low:.3g}, {row.effect_high:.3g}]"
        )
        p_holm = "n/a" if math.isnan(row.p_holm) else f"{row.p_holm:.3g}"
        lines.append(
            f"| {values}{_step(row)} | "
            f"{row.metric} | {'higher' if row.higher_is_better else 'lower'} | "
            f"{row.mean_difference:.4g} | {interval} | {p_holm} | {row.verdict} | {effect} |"
        )
    return lines
