"""Inference over seeds (and test images): the primary question, the secondary comparisons and
the intervals every verdict is read off. The written answer is aedepth.findings.

The study declares one primary question (config `primary_metric` and `smallest_difference`
δ): does that metric change by at least δ from one depth to the next? Each depth step is
answered from the paired differences of the models that share a seed (and every other axis
value, the "conditions"). Where the metric is a mean of independent per-image terms
(aedepth.metrics.IMAGE_MEANS) its interval counts both sources of noise, the seeds and the
test images, by a generalized pivotal quantity (Weerahandi 1993; Hannig, Iyer & Patterson
2006): R = D - Z * sqrt(S (n-1) / U + V), Z standard normal, U chi-square with n - 1 degrees of
freedom, S the seeds' part of the mean's variance and V the images' part (its N - 1 >= 199
degrees of freedom make it known to within a few per cent). With no image part it is exactly
the paired t interval. Other metrics are over seeds only, conditional on this test set.

One error rate per family, stated as such: the primary question's steps are one family, each
step's interval at level 1 - ALPHA / m (Bonferroni over its m steps), so all m intervals hold
together with probability at least 1 - ALPHA; a verdict is a pure function of its interval
and ±δ (primary_verdict), so the chance that any primary verdict is false is at most ALPHA.
Each step's secondary metrics are a family of their own, the same way, without δ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from aedepth.grid import COMPARED, REPLICATE
from aedepth.jobs import UserFacingError
from aedepth.metrics import IMAGE_MEANS, METRICS

ALPHA = 0.05  # each family's error rate: the chance that any of its verdicts is false
CONFIDENCE = 1 - ALPHA  # the level of an interval no verdict is read off (levels per depth)
POWER = 0.8
MAX_SEEDS = 10_000  # a plan beyond this many seeds is reported as NaN ("more than 10000")
# Planning uses the one-sided 80 % upper confidence limit of the seeds' sd, not the estimate
# itself (Browne 1995, Statistics in Medicine 14(17)): a few seeds' sd is often too small.
SD_UPPER_CONFIDENCE = 0.8
# Quantities compared beside the metrics, each a family of its own: the test - train loss gap
# at the kept epoch (higher is worse: the article's overfitting warning).
DIAGNOSTICS = {"loss_gap": False}
# Secondary verdicts: the interval above or below 0, or holding it.
VERDICTS = ("better", "worse", "no clear difference")
# Primary verdicts, by where the interval lies against 0 and ±δ (primary_verdict).
PRIMARY_VERDICTS = (
    "better by at least δ",
    "worse by at least δ",
    "better, not shown to reach δ",
    "worse, not shown to reach δ",
    "no meaningful difference",
    "inconclusive",
)
# Gauss-Legendre nodes on [-1, 1] for the pivot's coverage, an integral over the normal part:
# 128 give the t quantiles to 1e-10 at every level used here (tests/test_primary.py).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(128)
_Z_TOP = 9.0  # the normal density beyond 9 sd is below 1e-18


@dataclass(frozen=True)
class Question:
    """The declared primary question: does `metric` change by at least `smallest_difference`
    (δ, in the metric's own units) from one depth to the next?"""

    metric: str
    smallest_difference: float


def simultaneous_confidence(questions: int) -> float:
    """Each interval's level for `questions` intervals that hold together with 1 - ALPHA
    (Bonferroni)."""
    return 1 - ALPHA / max(1, questions)


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
        "confidence",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
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
        "confidence",
        "ci_low",
        "ci_high",
        "seed_variance",
        "image_variance",
        "p_value",
        "p_adjusted",
        "verdict",
        "seeds_to_detect",
        "seeds_for_equivalence",
        "seeds_to_detect_observed",
        "seeds_for_equivalence_observed",
        "epochs",
        "early_stopping_patience",
        "n_models",
        "still_improving",
    ]


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of the t interval of the mean; NaN bounds for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, df=len(values) - 1) * values.std(ddof=1)
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def _no_spread(d: np.ndarray) -> bool:
    """All differences equal, up to rounding (e.g. 0.272 - 0.258 twice): sd ~ 0."""
    return bool(d.std(ddof=1) <= 1e-9 * max(abs(d.mean()), 1e-300))


def primary_verdict(low: float, high: float, margin: float, higher_is_better: bool) -> str:
    """Where the interval [low, high] of a difference lies against 0 and ±margin (δ): wholly
    at or beyond +δ or -δ, "better/worse by at least δ"; inside ±δ, "no meaningful
    difference"; else excluding 0, "better/worse, not shown to reach δ"; else "inconclusive".
    A pure function of the interval printed beside it."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    up, down = ("better", "worse") if higher_is_better else ("worse", "better")
    if low >= margin or high <= -margin:
        return f"{up if low >= margin else down} by at least δ"
    if -margin < low and high < margin:
        return "no meaningful difference"
    if low > 0 or high < 0:
        return f"{up if low > 0 else down}, not shown to reach δ"
    return "inconclusive"


def secondary_verdict(low: float, high: float, higher_is_better: bool) -> str:
    """'better'/'worse' where the interval lies wholly above or below 0, else no clear
    difference."""
    if math.isnan(low) or not (low > 0 or high < 0):
        return "no clear difference"
    return "better" if (low > 0) == higher_is_better else "worse"


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
    """The fewest paired seeds (>= 2) for which the two-sided interval at level 1 - `alpha`
    excludes 0 with `power` when the true difference is `difference`, the per-seed differences
    spread with `sd` and the test images add `image_variance` to the mean's variance (more
    seeds do not shrink it); NaN when more than MAX_SEEDS would be needed or no number would."""
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
    """The fewest paired seeds (>= 2) for which the two-sided interval at level 1 - `alpha`
    lies within ±`margin` with `power` when the true difference is 0 (the TOST at alpha / 2
    on each side): margin / se must reach t(1 - alpha / 2) + t(1 - (1 - power) / 2) (Chow, Shao
    & Wang, Sample Size Calculations in Clinical Research, 10.1); NaN where more than
    MAX_SEEDS, or no number, would do."""
    if math.isnan(sd):
        return math.nan

    def enough(n: int) -> bool:
        se = math.sqrt(sd**2 / n + image_variance)
        needed = stats.t.isf(alpha / 2, n - 1) + stats.t.isf((1 - power) / 2, n - 1)
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


def image_variance(differences: np.ndarray) -> float:
    """The test images' part of the variance of the mean paired difference, from a (seeds,
    images) matrix of per-image differences: the variance of the image (column) means over N,
    exactly what a bootstrap over the test images estimates by resampling, less the
    seed-by-image interaction that the seeds' own spread already counts (its two-way ANOVA mean
    square over seeds x images); never below 0."""
    x = np.asarray(differences, dtype=float)
    n_seeds, n_images = x.shape
    per_image = x.mean(axis=0)
    images = float(per_image.var(ddof=1)) / n_images if n_images > 1 else 0.0
    if n_seeds < 2:
        return images
    residual = x - x.mean(axis=1, keepdims=True) - per_image + x.mean()
    interaction = float((residual**2).sum()) / ((n_seeds - 1) * (n_images - 1))
    return max(0.0, images - interaction / (n_seeds * n_images))


def pivot_coverage(half_width, seed_variance: float, image_variance: float, df: int):
    """P(|Z| sqrt(S df / U + V) <= h): the generalized pivot's probability of lying within
    `half_width` h of the estimate (vectorised over h), for the seeds' part S with `df`
    degrees of freedom and the images' part V. Integrated over Z: for |Z| = z below
    h / sqrt(V), the pivot is inside when U >= S df z^2 / (h^2 - z^2 V), a chi-square tail."""
    h = np.atleast_1d(np.asarray(half_width, dtype=float))
    top = np.full_like(h, _Z_TOP)
    if image_variance > 0:
        top = np.minimum(top, h / math.sqrt(image_variance))
    z = (_NODES[None, :] + 1) * top[:, None] / 2
    room = h[:, None] ** 2 - z**2 * image_variance
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(room > 0, seed_variance * df * z**2 / room, np.inf)
    density = np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    inside = special.chdtrc(df, bound) if seed_variance > 0 else (room > 0).astype(float)
    covered = 2 * (top / 2) * (density * inside) @ _WEIGHTS
    covered = np.clip(covered, 0.0, 1.0)
    return covered if np.ndim(half_width) else float(covered[0])


def pivot_half_width(
    seed_variance: float, image_variance: float, df: int, confidence: float
) -> float:
    """The half-width h of the generalized pivotal interval at `confidence`: exactly the t
    quantile times the standard error with seeds only, the normal one with images only."""
    tail = (1 - confidence) / 2
    if seed_variance == 0:
        return float(stats.norm.isf(tail) * math.sqrt(image_variance))
    if image_variance == 0:
        return float(stats.t.isf(tail, df) * math.sqrt(seed_variance))
    low = stats.norm.isf(tail) * math.sqrt(seed_variance + image_variance)
    high = stats.t.isf(tail, df) * math.sqrt(seed_variance) + stats.norm.isf(tail) * math.sqrt(
        image_variance
    )
    while pivot_coverage(high, seed_variance, image_variance, df) < confidence:
        high *= 2
    return float(
        optimize.brentq(
            lambda h: pivot_coverage(h, seed_variance, image_variance, df) - confidence,
            low,
            high,
            xtol=1e-12 * high,
            rtol=1e-12,
        )
    )


@dataclass(frozen=True)
class PairedEstimate:
    """A mean paired difference and the two parts of its variance: the seeds' (their spread
    over sqrt(n)) and the test images' (0 where there are no per-image values)."""

    mean: float
    n_pairs: int
    n_images: int  # 0: seeds only, conditional on this test set
    seed_variance: float
    image_variance: float

    def half_width(self, confidence: float) -> float:
        if self.n_pairs < 2:
            return math.nan
        return pivot_half_width(
            self.seed_variance, self.image_variance, self.n_pairs - 1, confidence
        )

    def interval(self, confidence: float) -> tuple[float, float]:
        half = self.half_width(confidence)
        return self.mean - half, self.mean + half

    def p_value(self) -> float:
        """Two-sided p of "no difference": the largest 1 - confidence whose interval still
        holds 0 (so p < a exactly when the interval at 1 - a excludes 0); with seeds only, the
        paired t test's p. Exactly 0 or 1 where nothing varies."""
        if self.n_pairs < 2:
            return math.nan
        if self.seed_variance + self.image_variance == 0:
            return 1.0 if self.mean == 0 else 0.0
        if self.image_variance == 0:
            return float(
                2 * stats.t.sf(abs(self.mean) / math.sqrt(self.seed_variance), self.n_pairs - 1)
            )
        covered = pivot_coverage(
            abs(self.mean), self.seed_variance, self.image_variance, self.n_pairs - 1
        )
        return float(1 - covered)


def paired_estimate(differences) -> PairedEstimate:
    """From per-seed differences (n,), seeds only; or from per-image differences
    (seeds, images), whose row means are the per-seed differences, seeds and test images."""
    x = np.asarray(differences, dtype=float)
    per_seed = x.mean(axis=1) if x.ndim == 2 else x
    n = len(per_seed)
    if n == 0:  # no seed trained at both depths
        return PairedEstimate(math.nan, 0, 0, math.nan, 0.0)
    seeds = math.nan if n < 2 else 0.0 if _no_spread(per_seed) else float(per_seed.var(ddof=1) / n)
    images = image_variance(x) if x.ndim == 2 else 0.0
    return PairedEstimate(
        float(per_seed.mean()), n, x.shape[1] if x.ndim == 2 else 0, seeds, images
    )


def groups(table: pd.DataFrame, keys: list[str]):
    """groupby over `keys` that keeps empty cells (a baseline has no depth) and no keys at all."""
    if not keys:
        yield (), table
        return
    for key, group in table.groupby(keys, sort=True, dropna=False):
        yield key, group


def depth_intervals(summary: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Mean and 95 % interval of every metric (and the loss gap) per method, condition and
    depth, over seeds: levels, which no verdict is read off."""
    refuse_duplicates(summary, conditions)
    rows = []
    for method, runs in summary.groupby("method", sort=False):
        for key, group in groups(runs, [*conditions, COMPARED]):
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
        named = ", ".join(f"{k} {axis_value(first[k])}" for k in keys if not pd.isna(first[k]))
        raise UserFacingError(
            f"the summary holds {int(twice.duplicated(keys).sum()) + 1} rows for {named}: "
            "each run once, please (delete summary.csv and run again)"
        )


def axis_value(value) -> str:
    """An axis value as written in config.yaml: 2, not the 2.0 of a column with empty cells."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _paired_depths(models: pd.DataFrame, conditions: list[str]):
    """(condition key, previous depth's rows, depth's rows) per depth step and setting, each
    depth's rows indexed by seed."""
    for key, same in groups(models, conditions):
        depths = sorted(int(d) for d in same[COMPARED].unique())
        by_depth = {d: same[same[COMPARED] == d].set_index(REPLICATE) for d in depths}
        for previous, depth in zip(depths, depths[1:]):
            yield key, by_depth[previous], by_depth[depth]


def depth_comparisons(models: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Each depth against the next smaller depth of the same conditions, paired over seeds.
    Each step's metrics are one family and its loss gap another: every interval of a family
    of k is at level 1 - ALPHA / k, so they hold together with 1 - ALPHA, and each verdict is
    read off its interval; p_adjusted is k p (Bonferroni), below ALPHA exactly where the
    interval excludes 0."""
    refuse_duplicates(models, conditions)
    rows = []
    for key, old, new in _paired_depths(models, conditions):
        shared = new.index.intersection(old.index).sort_values()
        for family in (METRICS, DIAGNOSTICS):
            present = [m for m in family if m in new]
            confidence = simultaneous_confidence(len(present))
            for metric in present:
                differences = (new.loc[shared, metric] - old.loc[shared, metric]).dropna()
                estimate = paired_estimate(differences.to_numpy())
                low, high = estimate.interval(confidence)
                p_value = estimate.p_value()
                rows.append(
                    [
                        *key,
                        int(new[COMPARED].iloc[0]),
                        int(old[COMPARED].iloc[0]),
                        metric,
                        family[metric],
                        len(differences),
                        estimate.mean,
                        confidence,
                        low,
                        high,
                        p_value,
                        min(1.0, p_value * len(present)),
                        secondary_verdict(low, high, family[metric]),
                        *effect_size(differences),
                    ]
                )
    return pd.DataFrame(rows, columns=comparison_columns(conditions))


def primary_comparisons(
    models: pd.DataFrame,
    conditions: list[str],
    question: Question,
    per_image: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The primary question per depth step and setting: the mean paired difference of the
    primary metric and its interval at the study's simultaneous level, over seeds and, where
    the metric is a mean of independent per-image terms (IMAGE_MEANS) and `per_image` holds
    them by model id, over test images too; the verdict read off it; and the seeds a decision
    would take."""
    refuse_duplicates(models, conditions)
    metric, margin = question.metric, question.smallest_difference
    per_image = per_image if metric in IMAGE_MEANS else None
    rows = []
    for key, old, new in _paired_depths(models, conditions):
        shared = [
            seed
            for seed in new.index.intersection(old.index).sort_values()
            if not (pd.isna(new.loc[seed, metric]) or pd.isna(old.loc[seed, metric]))
        ]
        estimate = paired_estimate(_primary_differences(old, new, shared, metric, per_image))
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
                "estimate": estimate,
                "mean_difference": estimate.mean,
                "seed_variance": estimate.seed_variance,
                "image_variance": estimate.image_variance,
                "p_value": estimate.p_value(),
                "sd": _sd([new.loc[s, metric] - old.loc[s, metric] for s in shared]),
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


def _sd(differences) -> float:
    return float(np.std(differences, ddof=1)) if len(differences) > 1 else math.nan


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
    """Every step's interval at the simultaneous level over the study's steps, its verdict,
    and the seeds each step would need at that level: planned at the seeds' sd's upper limit
    (pessimistic) and, beside it, at the observed sd."""
    confidence = simultaneous_confidence(len(table))
    alpha = 1 - confidence
    table["confidence"] = confidence
    bounds = [row.estimate.interval(confidence) for row in table.itertuples()]
    table["ci_low"] = [low for low, _ in bounds]
    table["ci_high"] = [high for _, high in bounds]
    table["p_adjusted"] = np.minimum(1.0, table["p_value"] * len(table))
    table["verdict"] = [
        primary_verdict(row.ci_low, row.ci_high, margin, row.higher_is_better)
        for row in table.itertuples()
    ]
    for suffix, sd in (("", "sd_upper"), ("_observed", "sd")):
        table[f"seeds_to_detect{suffix}"] = [
            seeds_to_detect(margin, getattr(row, sd), row.image_variance, alpha)
            for row in table.itertuples()
        ]
        table[f"seeds_for_equivalence{suffix}"] = [
            seeds_for_equivalence(margin, getattr(row, sd), row.image_variance, alpha)
            for row in table.itertuples()
        ]
    return table
