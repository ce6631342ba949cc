"""Uncertainty over seeds: intervals per run setting, paired depth comparisons, findings.

Intervals are two-sided 95 % Student-t intervals over seeds (mean +- t * sd / sqrt(n)); a
comparison pairs the models of two depths that share a seed (and every other axis value,
the "conditions") and takes the t interval of the per-seed differences. With one seed there
is no interval (NaN) and no verdict can be "clear". Baselines get intervals over their seeds
too (none for an unseeded one) and appear in the findings beside the models, by name.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from aedepth.grid import AUTOENCODER, COMPARED, REPLICATE
from aedepth.metrics import METRICS

CONFIDENCE = 0.95
VERDICTS = ("better", "worse", "no clear difference")
# The metrics findings.md shows as levels per depth (all are in the tables).
HEADLINE_METRICS = ("knn_accuracy", "silhouette", "trustworthiness", "reconstruction_bce")


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
        "verdict",
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


def verdict(low: float, high: float, higher_is_better: bool) -> str:
    """'better' or 'worse' when the interval of (new - old) excludes zero, else no clear difference."""
    if math.isnan(low) or low <= 0 <= high:
        return "no clear difference"
    improved = low > 0 if higher_is_better else high < 0
    return "better" if improved else "worse"


def _groups(table: pd.DataFrame, keys: list[str]):
    """groupby over `keys` that keeps empty cells (a baseline has no depth) and no keys at all."""
    if not keys:
        yield (), table
        return
    for key, group in table.groupby(keys, sort=True, dropna=False):
        yield key, group


def depth_intervals(summary: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Mean and 95 % interval of every metric per method, condition and depth, over seeds."""
    rows = []
    for method, runs in summary.groupby("method", sort=False):
        for key, group in _groups(runs, [*conditions, COMPARED]):
            for metric, higher_is_better in METRICS.items():
                values = group[metric].dropna()
                if values.empty:  # e.g. reconstruction errors of a baseline that cannot
                    continue
                mean, low, high = t_interval(values)
                rows.append((method, *key, metric, higher_is_better, len(values), mean, low, high))
    return pd.DataFrame(rows, columns=interval_columns(conditions))


def depth_comparisons(models: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Each depth against the next smaller depth of the same conditions, paired over seeds."""
    rows = []
    for key, same in _groups(models, conditions):
        depths = sorted(int(d) for d in same[COMPARED].unique())
        by_depth = {d: same[same[COMPARED] == d].set_index(REPLICATE) for d in depths}
        for previous, depth in zip(depths, depths[1:]):
            shared = by_depth[depth].index.intersection(by_depth[previous].index).sort_values()
            for metric, higher_is_better in METRICS.items():
                differences = (
                    by_depth[depth].loc[shared, metric] - by_depth[previous].loc[shared, metric]
                )
                mean, low, high = t_interval(differences)
                rows.append(
                    (
                        *key,
                        depth,
                        previous,
                        metric,
                        higher_is_better,
                        len(shared),
                        mean,
                        low,
                        high,
                        verdict(low, high, higher_is_better),
                    )
                )
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


def findings_markdown(
    summary: pd.DataFrame,
    intervals: pd.DataFrame,
    comparisons: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    data: str,
) -> str:
    """A short written answer to "does depth improve the latent representation?".

    Every sentence is derived from the tables; nothing here is fixed text about results.
    """
    models = summary[summary["method"] == AUTOENCODER]
    seeds = sorted(int(s) for s in models[REPLICATE].unique())
    depths = sorted(int(d) for d in models[COMPARED].unique())
    baselines = [m for m in summary["method"].unique() if m != AUTOENCODER]
    lines = [
        "# Does depth improve the latent representation?",
        "",
        f"Data: {data}. Depths compared: {', '.join(map(str, depths))}. "
        f"This rests on {len(seeds)} seed{'s' if len(seeds) != 1 else ''} per depth "
        f"({', '.join(map(str, seeds))}); intervals are 95 % Student-t intervals over seeds, "
        "comparisons pair models that share a seed. "
        f"Baselines: {', '.join(baselines) if baselines else 'none'}.",
        "",
    ]
    if comparisons.empty:
        lines.append("Only one depth was trained, so there is nothing to compare.")
    else:
        if len(seeds) < 2:
            lines += [
                "**With a single seed no difference can be called clear.** "
                "Add seeds (e.g. `--config seeds=[0,1,2]`) to answer the question.",
                "",
            ]
        lines += ["## Answer", ""]
        several = len(list(_groups(comparisons, conditions))) > 1
        for _, group in _groups(comparisons, [*conditions, f"previous_{COMPARED}", COMPARED]):
            first = next(group.itertuples())
            by_verdict = {v: group.loc[group["verdict"] == v, "metric"].tolist() for v in VERDICTS}
            n_better, n_worse = len(by_verdict["better"]), len(by_verdict["worse"])
            if n_better and not n_worse:
                headline = f"better on {n_better} of {len(group)} metrics"
            elif n_worse and not n_better:
                headline = f"worse on {n_worse} of {len(group)} metrics"
            elif n_better or n_worse:
                headline = (
                    f"mixed: better on {n_better}, worse on {n_worse} of {len(group)} metrics"
                )
            else:
                headline = f"no clear difference on any of the {len(group)} metrics"
            setting = _setting(first, conditions, labels)
            where = f" ({setting})" if several and setting else ""
            steps = f"{getattr(first, f'previous_{COMPARED}')} → {getattr(first, COMPARED)}"
            lines.append(f"- **{steps} hidden layers{where}: {headline}.**")
            for name in VERDICTS:
                if by_verdict[name]:
                    lines.append(f"  - {name}: {', '.join(by_verdict[name])}")
    headline = [m for m in HEADLINE_METRICS if m in set(intervals["metric"])]
    lines += [
        "",
        "## Levels (test split; mean and 95 % interval over seeds)",
        "",
        "| run | " + " | ".join(headline) + " |",
        "| --- |" + " --- |" * len(headline),
    ]
    for _, group in _groups(intervals, ["method", *conditions, COMPARED]):
        first = next(group.itertuples())
        setting = _setting(first, conditions, labels)
        if first.method == AUTOENCODER:
            name = f"{_value(getattr(first, COMPARED))} hidden layer(s)"
        else:
            name = f"baseline {first.method}"
        levels = group.set_index("metric")
        cells = [
            _level(next(levels.loc[[m]].itertuples())) if m in levels.index else "n/a"
            for m in headline
        ]
        lines.append(f"| {name}{', ' + setting if setting else ''} | " + " | ".join(cells) + " |")
    if not comparisons.empty:
        head = " | ".join(labels.get(c, c) for c in conditions)
        lines += [
            "",
            "## Paired differences (deeper minus shallower)",
            "",
            f"| {head + ' | ' if head else ''}depths | metric | better if | mean difference "
            "| 95 % interval | verdict |",
            "|" + " --- |" * (len(conditions) + 6),
        ]
        for row in comparisons.itertuples():
            interval = "n/a" if math.isnan(row.ci_low) else f"[{row.ci_low:.4g}, {row.ci_high:.4g}]"
            values = "".join(f"{_value(getattr(row, c))} | " for c in conditions)
            lines.append(
                f"| {values}{getattr(row, f'previous_{COMPARED}')} → {getattr(row, COMPARED)} | "
                f"{row.metric} | {'higher' if row.higher_is_better else 'lower'} | "
                f"{row.mean_difference:.4g} | {interval} | {row.verdict} |"
            )
    return "\n".join(lines) + "\n"
