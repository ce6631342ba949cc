"""Uncertainty over seeds: intervals per depth, paired depth comparisons, written findings.

Intervals are two-sided 95 % Student-t intervals over seeds (mean +- t * sd / sqrt(n)); a
comparison pairs the models of two depths that share a seed and takes the t interval of the
per-seed differences. With one seed there is no interval (NaN) and no verdict can be "clear".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from aedepth.metrics import METRICS

CONFIDENCE = 0.95
INTERVAL_COLUMNS = (
    "latent_dim",
    "depth",
    "metric",
    "higher_is_better",
    "n_seeds",
    "mean",
    "ci_low",
    "ci_high",
)
COMPARISON_COLUMNS = (
    "latent_dim",
    "depth",
    "previous_depth",
    "metric",
    "higher_is_better",
    "n_pairs",
    "mean_difference",
    "ci_low",
    "ci_high",
    "verdict",
)
VERDICTS = ("better", "worse", "no clear difference")


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


def depth_intervals(models: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % interval of every metric per (latent size, depth); one row per model in."""
    rows = []
    for (latent_dim, depth), group in models.groupby(["latent_dim", "depth"], sort=True):
        for metric, higher_is_better in METRICS.items():
            mean, low, high = t_interval(group[metric])
            rows.append(
                (int(latent_dim), int(depth), metric, higher_is_better, len(group), mean, low, high)
            )
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))


def depth_comparisons(models: pd.DataFrame) -> pd.DataFrame:
    """Each depth against the next smaller depth of the same latent size, paired over seeds."""
    rows = []
    for latent_dim, same_size in models.groupby("latent_dim", sort=True):
        depths = sorted(int(d) for d in same_size["depth"].unique())
        by_depth = {d: same_size[same_size["depth"] == d].set_index("seed") for d in depths}
        for previous, depth in zip(depths, depths[1:]):
            shared = by_depth[depth].index.intersection(by_depth[previous].index).sort_values()
            for metric, higher_is_better in METRICS.items():
                differences = (
                    by_depth[depth].loc[shared, metric] - by_depth[previous].loc[shared, metric]
                )
                mean, low, high = t_interval(differences)
                rows.append(
                    (
                        int(latent_dim),
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
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def findings_markdown(models: pd.DataFrame, comparisons: pd.DataFrame, data: str) -> str:
    """A short written answer to "does depth improve the latent representation?".

    Every sentence is derived from `comparisons`; nothing here is fixed text about results.
    """
    seeds = sorted(int(s) for s in models["seed"].unique())
    depths = sorted(int(d) for d in models["depth"].unique())
    lines = [
        "# Does depth improve the latent representation?",
        "",
        f"Data: {data}. Depths compared: {', '.join(map(str, depths))}. "
        f"This rests on {len(seeds)} seed{'s' if len(seeds) != 1 else ''} per depth "
        f"({', '.join(map(str, seeds))}); intervals are 95 % Student-t intervals over seeds, "
        "comparisons pair models that share a seed.",
        "",
    ]
    if comparisons.empty:
        lines.append("Only one depth was trained, so there is nothing to compare.")
        return "\n".join(lines) + "\n"
    if len(seeds) < 2:
        lines += [
            "**With a single seed no difference can be called clear.** "
            "Add seeds (e.g. `--config seeds=[0,1,2]`) to answer the question.",
            "",
        ]
    lines.append("## Answer")
    lines.append("")
    sizes = sorted(int(k) for k in comparisons["latent_dim"].unique())
    groups = comparisons.groupby(["latent_dim", "previous_depth", "depth"], sort=True)
    for (latent_dim, previous, depth), group in groups:
        by_verdict = {v: group.loc[group["verdict"] == v, "metric"].tolist() for v in VERDICTS}
        n_better, n_worse = len(by_verdict["better"]), len(by_verdict["worse"])
        if n_better and not n_worse:
            headline = f"better on {n_better} of {len(group)} metrics"
        elif n_worse and not n_better:
            headline = f"worse on {n_worse} of {len(group)} metrics"
        elif n_better or n_worse:
            headline = f"mixed: better on {n_better}, worse on {n_worse} of {len(group)} metrics"
        else:
            headline = f"no clear difference on any of the {len(group)} metrics"
        size = f" (latent size {latent_dim})" if len(sizes) > 1 else ""
        lines.append(f"- **{previous} → {depth} hidden layers{size}: {headline}.**")
        for name in VERDICTS:
            if by_verdict[name]:
                lines.append(f"  - {name}: {', '.join(by_verdict[name])}")
    lines += [
        "",
        "## Paired differences (deeper minus shallower)",
        "",
        "| latent size | depths | metric | better if | mean difference | 95 % interval | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in comparisons.itertuples():
        interval = "n/a" if math.isnan(row.ci_low) else f"[{row.ci_low:.4g}, {row.ci_high:.4g}]"
        lines.append(
            f"| {row.latent_dim} | {row.previous_depth} → {row.depth} | {row.metric} | "
            f"{'higher' if row.higher_is_better else 'lower'} | {row.mean_difference:.4g} | "
            f"{interval} | {row.verdict} |"
        )
    return "\n".join(lines) + "\n"
