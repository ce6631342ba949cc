"""Uncertainty over seeds: intervals per run setting, paired depth comparisons, findings.

Intervals are two-sided 95 % Student-t intervals over seeds (mean +- t * sd / sqrt(n)); a
comparison pairs the models of two depths that share a seed (and every other axis value,
the "conditions") and takes the t interval of the per-seed differences. Its verdict comes
from the paired t test's p value, Holm-adjusted over its family (one depth step of one
setting, all metrics of METRICS; the loss gap is a family of its own). Each comparison also
carries the paired effect size d_z = mean / sd of the differences with its exact 95 %
interval (noncentral t), and the number of seeds a paired t test at the 5 % level would
need to detect the observed d_z with 80 % power. With one seed there is no interval (NaN)
and no verdict can be "clear". Baselines get intervals over their seeds too (none for an
unseeded one) and appear in the findings beside the models, by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import re

import numpy as np
import pandas as pd
from scipy import optimize, stats

from aedepth.grid import ARM, AUTOENCODER, COMPARED, HEADLINE_METRICS, REGIME, REPLICATE
from aedepth.metrics import METRICS

CONFIDENCE = 0.95
NA = "n/a"
ALPHA = 1 - CONFIDENCE  # the family-wise error rate of the Holm-adjusted verdicts
POWER = 0.8
MAX_SEEDS = 10_000  # seeds_for_80_power beyond this is reported as NaN ("more than 10000")
# Quantities compared beside the metrics, each a family of its own: the test - train loss gap
# at the kept epoch (higher is worse: the article's overfitting warning).
DIAGNOSTICS = {"loss_gap": False}
# The article's claims, and the metrics each is judged on.
CLUSTER_METRICS = (
    "knn_accuracy", "silhouette", "davies_bouldin", "calinski_harabasz", "kmeans_ari", "kmeans_nmi",
)  # fmt: skip
RECONSTRUCTION_METRICS = ("reconstruction_bce", "reconstruction_mse")
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
# The metrics findings.md shows as levels per depth (all are in the tables).
# Characters that start or end inline markup in reStructuredText (a backslash makes them text).
RST_MARKUP = re.compile(r"[\\`*_|\[\]]")


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


def comparison_columns(conditions: list[str]) -> list[str]:
    return [
        *conditions,
        COMPARED,
        f"previous_{COMPARED}",
        "metric",
        "higher_is_better",
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
        "seeds_for_80_power",
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
    Identical differences (sd 0, up to rounding) leave the t test undefined: 1 if they are all
    0, else NaN (no verdict: a few seeds that happen to agree exactly prove nothing)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan
    if _no_spread(d):
        return 1.0 if d.mean() == 0 else math.nan
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


def paired_power(dz: float, n: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t test at level `alpha` with n pairs, true effect d_z."""
    df, ncp = n - 1, dz * math.sqrt(n)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))


def seeds_for_power(dz: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The fewest seeds (pairs, >= 2) for which a paired t test detects d_z with `power`;
    NaN when d_z is NaN or 0, or more than MAX_SEEDS would be needed."""
    if math.isnan(dz) or dz == 0:
        return math.nan
    normal = ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / abs(dz)) ** 2
    if normal > MAX_SEEDS:
        return math.nan
    n = max(2, math.ceil(normal) - 1)  # the t test needs a little more than the normal one
    while paired_power(dz, n, alpha) < power:
        n += 1
    while n > 2 and paired_power(dz, n - 1, alpha) >= power:
        n -= 1
    return float(n)


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


def depth_comparisons(models: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Each depth against the next smaller depth of the same conditions, paired over seeds;
    verdicts Holm-adjusted within each family (one step of one setting: all metrics; the loss
    gap alone)."""
    rows = []
    for key, same in _groups(models, conditions):
        depths = sorted(int(d) for d in same[COMPARED].unique())
        by_depth = {d: same[same[COMPARED] == d].set_index(REPLICATE) for d in depths}
        for previous, depth in zip(depths, depths[1:]):
            shared = by_depth[depth].index.intersection(by_depth[previous].index).sort_values()
            for family in (METRICS, DIAGNOSTICS):
                family_rows = []
                for metric, higher_is_better in family.items():
                    if metric not in same:
                        continue
                    differences = (
                        by_depth[depth].loc[shared, metric] - by_depth[previous].loc[shared, metric]
                    ).dropna()
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
                            seeds_for_power(dz),
                        ]
                    )
                at = len(key) + 8  # the p_value column
                for row, adjusted in zip(family_rows, holm([r[at] for r in family_rows])):
                    row[at + 1] = adjusted
                    row[at + 2] = adjusted_verdict(row[len(key) + 5], adjusted, row[len(key) + 3])
                rows += family_rows
    return pd.DataFrame(rows, columns=comparison_columns(conditions))


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


def _claim(group: pd.DataFrame, metrics: tuple[str, ...]) -> str:
    """How one step's verdicts bear on a claim that depth improves `metrics`."""
    rows = group[group["metric"].isin(metrics)]
    better, worse = (int((rows["verdict"] == v).sum()) for v in ("better", "worse"))
    counts = f"better on {better}, worse on {worse} of {len(rows)}"
    if better and not worse:
        return f"holds ({counts})"
    if worse and not better:
        return f"contradicted ({counts})"
    return f"mixed ({counts})" if better else f"not shown ({counts})"


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
        agree = len(by_metric) - len(differ)
        where = f" ({setting})" if setting else ""
        lines.append(
            f"- {_step(first)} hidden layers{where}: the verdicts agree on {agree} of "
            f"{len(by_metric)} metrics"
            + (f"; they differ on {'; '.join(differ)}." if differ else ".")
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
    comparisons: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    omit: dict | None = None,
) -> list[str]:
    """The answer in a few plain sentences (no markup): findings.md begins with them and the
    report's home page shows them. One per depth step (and setting): how the deeper model
    fares on the metrics by the Holm-adjusted verdicts; first, that a single seed cannot call
    any difference clear; or that only one depth was trained."""
    metric_rows = comparisons[comparisons["metric"].isin(list(METRICS))]
    if metric_rows.empty:
        return ["Only one depth was trained, so there is nothing to compare."]
    models = summary[summary["method"] == AUTOENCODER]
    sentences = []
    if models[REPLICATE].nunique() < 2:
        sentences.append(
            "With a single seed no difference can be called clear: "
            "add seeds (e.g. --config seeds=[0,1,2]) to answer the question."
        )
    shown = _shown(models, conditions, omit)
    several = len(list(_groups(metric_rows, conditions))) > 1
    for _, group in _groups(metric_rows, [*conditions, f"previous_{COMPARED}", COMPARED]):
        n_better, n_worse = ((group["verdict"] == v).sum() for v in ("better", "worse"))
        if n_better and not n_worse:
            answer = f"better on {n_better} of {len(group)} metrics"
        elif n_worse and not n_better:
            answer = f"worse on {n_worse} of {len(group)} metrics"
        elif n_better or n_worse:
            answer = f"mixed: better on {n_better}, worse on {n_worse} of {len(group)} metrics"
        else:
            answer = f"no clear difference on any of the {len(group)} metrics"
        sentences.append(
            f"{_step_in_setting(next(group.itertuples()), shown, labels, several)}: {answer}."
        )
    return sentences


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
    study = _Study(summary, intervals, comparisons, conditions, labels, omit)
    lines = _introduction(study, data)
    if not comparisons.empty:
        lines += _verdicts(study) + _agreements(study) + _article_claims(study)
    lines += _convergence(study) + _ceilings(study, dataset) + _levels_table(study)
    if not comparisons.empty:
        lines += _differences_table(study)
    return "\n".join(lines) + "\n"


def _introduction(study: _Study, data: str) -> list[str]:
    """The headline sentences, then what the answer rests on."""
    seeds = sorted(int(s) for s in study.models[REPLICATE].unique())
    depths = sorted(int(d) for d in study.models[COMPARED].unique())
    baselines = [m for m in study.summary["method"].unique() if m != AUTOENCODER]
    sentences = headline(
        study.summary, study.comparisons, study.conditions, study.labels, study.omit
    )
    return [
        "# Does depth improve the latent representation?",
        "",
        *(f"- **{sentence}**" for sentence in sentences),
        "",
        f"Data: {data}. Depths compared: {', '.join(map(str, depths))}. "
        f"This rests on {len(seeds)} seed{'s' if len(seeds) != 1 else ''} per depth "
        f"({', '.join(map(str, seeds))}); intervals are 95 % Student-t intervals over seeds, "
        "comparisons pair models that share a seed. A verdict is the paired t test's, "
        f"Holm-adjusted over the {len(METRICS)} metrics of its depth step (family-wise error "
        f"rate {ALPHA:.0%}); d_z is the paired effect size (mean / sd of the differences) with "
        "its 95 % interval. "
        f"Baselines: {', '.join(baselines) if baselines else 'none'}.",
        "",
    ]


def _verdicts(study: _Study) -> list[str]:
    """Per depth step, the metrics under each verdict with their levels and effect sizes."""
    lines = ["## Verdicts per metric", ""]
    several = len(list(_groups(study.metric_rows, study.conditions))) > 1
    for _, group in study.steps(study.metric_rows):
        first = next(group.itertuples())
        lines.append(f"- {_step_in_setting(first, study.shown, study.labels, several)}:")
        for name in VERDICTS:
            parts = [
                _verdict_part(study, first, row, name)
                for row in group[group["verdict"] == name].itertuples()
            ]
            if parts:
                lines.append(f"  - {name}: {'; '.join(parts)}")
    return lines


def _verdict_part(study: _Study, step, row, verdict: str) -> str:
    """One metric of a step: its levels before and after, d_z, seeds for power if unclear."""
    old = study.level_at(step, f"previous_{COMPARED}", row.metric)
    new = study.level_at(step, COMPARED, row.metric)
    text = f"{row.metric} {_level(old)} → {_level(new)}" if old and new else row.metric
    if math.isnan(row.effect_size):
        return text
    text += f" (d_z {row.effect_size:.3g} [{row.effect_low:.3g}, {row.effect_high:.3g}]"
    if verdict == "no clear difference":
        seeds_needed = (
            f"more than {MAX_SEEDS}"
            if math.isnan(row.seeds_for_80_power)
            else f"{row.seeds_for_80_power:.0f}"
        )
        text += f"; {seeds_needed} seeds for 80 % power"
    return text + ")"


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
    for claim, metrics in (
        ("Clearer clusters with depth", CLUSTER_METRICS),
        ("Sharper reconstructions with depth", RECONSTRUCTION_METRICS),
    ):
        steps = [
            f"{_step(first := next(g.itertuples()))}{study.setting(first)}: {_claim(g, metrics)}"
            for _, g in study.steps(study.metric_rows)
        ]
        lines.append(f"- {claim} ({', '.join(metrics)}): " + "; ".join(steps) + ".")
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


def _differences_table(study: _Study) -> list[str]:
    """Every paired comparison: difference, interval, Holm p, verdict, d_z, seeds for power."""
    conditions = study.conditions
    head = " | ".join(study.labels.get(c, c) for c in conditions)
    lines = [
        "",
        "## Paired differences (deeper minus shallower)",
        "",
        f"| {head + ' | ' if head else ''}depths | metric | better if | mean difference "
        "| 95 % interval | Holm p | verdict | d_z [95 %] | seeds for 80 % power |",
        "|" + " --- |" * (len(conditions) + 9),
    ]
    for row in study.comparisons.itertuples():
        interval = "n/a" if math.isnan(row.ci_low) else f"[{row.ci_low:.4g}, {row.ci_high:.4g}]"
        values = "".join(f"{_value(getattr(row, c))} | " for c in conditions)
        effect = (
            "n/a"
            if math.isnan(row.effect_size)
            else f"{row.effect_size:.3g} [{row.effect_low:.3g}, {row.effect_high:.3g}]"
        )
        p_holm = "n/a" if math.isnan(row.p_holm) else f"{row.p_holm:.3g}"
        needed = "n/a" if math.isnan(row.seeds_for_80_power) else f"{row.seeds_for_80_power:.0f}"
        lines.append(
            f"| {values}{_step(row)} | "
            f"{row.metric} | {'higher' if row.higher_is_better else 'lower'} | "
            f"{row.mean_difference:.4g} | {interval} | {p_holm} | {row.verdict} | "
            f"{effect} | {needed} |"
        )
    return lines
