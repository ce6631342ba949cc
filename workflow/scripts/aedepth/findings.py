"""The written answer: findings.md and its headline, every sentence derived from the tables of
aedepth.stats and checkable against the numbers printed beside it.

Digits follow the standard error: an interval shows two significant digits of its half-width
and the estimate the same decimal places; its ends are rounded outwards, with a digit more
wherever rounding would move an end across 0 or ±δ, so a verdict read off the printed interval
is the verdict read off the exact one. The CSVs keep full precision.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from aedepth.grid import ARM, AUTOENCODER, COMPARED, HEADLINE_METRICS, REGIME, REPLICATE
from aedepth.metrics import CONSTRUCTS, IMAGE_MEANS, METRICS
from aedepth.stats import (
    ALPHA,
    MAX_SEEDS,
    POWER,
    SD_UPPER_CONFIDENCE,
    VERDICTS,
    groups,
    axis_value,
)

NA = "n/a"
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
# Characters that start or end inline markup in reStructuredText (a backslash makes them text).
RST_MARKUP = re.compile(r"[\\`*_|\[\]]")
_MORE_DIGITS = 6  # at most this many digits beyond two of the half-width keep a verdict


# --- Numbers as printed -------------------------------------------------------------------


def _decimals(half: float) -> int:
    """Decimal places that show two significant digits of a half-width (negative: tens...)."""
    return 1 - math.floor(math.log10(half))


def _at(value: float, decimals: int, way=round) -> float:
    scale = 10.0**decimals
    nudge = 1e-9 if way is math.floor else -1e-9 if way is math.ceil else 0.0
    return way(value * scale + nudge) / scale + 0.0  # + 0.0: no "-0"


def _text(value: float, decimals: int, sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.{max(0, decimals)}f}"


def _regions(low: float, high: float, margin: float | None) -> tuple[bool, ...]:
    """Where an interval lies against 0 (and ±margin): what its verdict is read from."""
    sides = (low > 0, high < 0)
    if margin is None:
        return sides
    return (*sides, low >= margin, high <= -margin, -margin < low, high < margin)


def interval_text(
    mean: float, low: float, high: float, margin: float | None = None, sign: bool = True
) -> tuple[str, float, float]:
    """("+0.071 [0.059, 0.083]", printed low, printed high): two significant digits of the
    half-width, the ends rounded outwards, and more digits where fewer would move an end
    across 0 (or ±margin). Without an interval, the estimate to 4 significant digits."""
    if math.isnan(mean):
        return NA, math.nan, math.nan
    if math.isnan(low) or math.isnan(high):
        return (f"{mean:+.4g}, no interval" if sign else f"{mean:.4g}"), math.nan, math.nan
    half = (high - low) / 2
    if half == 0:  # nothing varied: the value itself, exactly enough to be read
        return f"{mean:{'+' if sign else ''}.6g} [{low:.6g}, {high:.6g}]", low, high
    decimals = _decimals(half)
    wanted = _regions(low, high, margin)
    for extra in range(_MORE_DIGITS + 1):
        d = decimals + extra
        shown_low, shown_high = _at(low, d, math.floor), _at(high, d, math.ceil)
        if _regions(shown_low, shown_high, margin) == wanted:
            break
    text = f"{_text(_at(mean, d), d, sign)} [{_text(shown_low, d)}, {_text(shown_high, d)}]"
    return text, shown_low, shown_high


def level_text(row) -> str:
    """A level (mean and interval, no sign) as printed, e.g. "0.7245 [0.7216, 0.7273]"."""
    return interval_text(row.mean, row.ci_low, row.ci_high, sign=False)[0]


def percent(confidence: float) -> str:
    """0.975 -> "97.5 %"."""
    return f"{100 * confidence:.4g} %"


def _setting(row, conditions: list[str], labels: dict[str, str]) -> str:
    """e.g. "latent size 2"; empty cells (an axis a baseline does not use) left out."""
    parts = [
        f"{labels.get(c, c)} {axis_value(getattr(row, c))}"
        for c in conditions
        if not pd.isna(getattr(row, c))
    ]
    return ", ".join(parts)


def _model_levels(intervals: pd.DataFrame, conditions: list[str]) -> dict[tuple, object]:
    """(condition values as text..., depth, metric) -> the interval row of the models."""
    models = intervals[intervals["method"] == AUTOENCODER]
    return {
        (*(axis_value(getattr(r, c)) for c in conditions), int(getattr(r, COMPARED)), r.metric): r
        for r in models.itertuples()
    }


def _step(row) -> str:
    return f"{getattr(row, f'previous_{COMPARED}')} → {getattr(row, COMPARED)}"


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


def _step_in_setting(row, shown: list[str], labels: dict[str, str], several: bool) -> str:
    """e.g. "1 → 2 hidden layers (latent size 8)"; the setting only where there are several."""
    setting = _setting(row, shown, labels)
    return f"{_step(row)} hidden layers{f' ({setting})' if several and setting else ''}"


# --- The headline: the primary question's answer per step -------------------------------------


def headline(
    summary: pd.DataFrame,
    primary: pd.DataFrame,
    conditions: list[str],
    labels: dict[str, str],
    omit: dict | None = None,
) -> list[str]:
    """The answer in a few plain sentences (no markup): findings.md begins with them and the
    report's home page shows them. One per depth step (and setting), answering the primary
    question in the metric's units: the difference and the interval its verdict is read off,
    that interval's level, the paired seeds and the training budget, then the verdict and why;
    first, that a single seed cannot answer; or that only one depth was trained."""
    if primary.empty:
        return ["Only one depth was trained, so there is nothing to compare."]
    models = summary[summary["method"] == AUTOENCODER]
    sentences = []
    if models[REPLICATE].nunique() < 2:
        sentences.append(
            "With a single seed there is no interval, so no step can be decided: "
            "add seeds (e.g. --config seeds=[0,1,2]) to answer the question."
        )
    shown = _shown(models, conditions, omit)
    several = len(list(groups(primary, conditions))) > 1
    for row in primary.itertuples():
        sentences.append(
            f"{_step_in_setting(row, shown, labels, several)}: {_primary_answer(row, len(primary))}"
        )
    return sentences


def _primary_answer(row, steps: int) -> str:
    """e.g. "knn_accuracy +0.071 [0.059, 0.083] (97.5 % interval, 95 % for the 2 steps
    together; 3 paired seeds, 50 epochs): better by at least 0.01: the whole interval lies at
    or above +0.01." """
    text, low, high = interval_text(
        row.mean_difference, row.ci_low, row.ci_high, row.smallest_difference
    )
    if row.n_pairs == 0:
        text = ": no seed trained at both depths"
    else:
        text = " " + text
    level = (
        ""
        if math.isnan(low)
        else f"{percent(row.confidence)} interval"
        + (f", {percent(1 - ALPHA)} for the {steps} steps together" if steps > 1 else "")
        + "; "
    )
    return (
        f"{row.metric}{text} ({level}{_pairs(row)}, {_budget_text(row)}): "
        f"{_primary_outcome(row, low, high)}."
    )


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


def _primary_outcome(row, low: float, high: float) -> str:
    """The verdict and where the printed interval [low, high] lies that makes it so."""
    delta = f"{row.smallest_difference:g}"
    verdict = row.verdict
    if math.isnan(low):
        return "inconclusive: at least 2 paired seeds are needed for an interval"
    if verdict.endswith("by at least δ"):
        side = (
            f"at or above +{delta}" if low >= row.smallest_difference else f"at or below -{delta}"
        )
        return f"{verdict.replace('δ', delta)}: the whole interval lies {side}"
    if verdict == "no meaningful difference":
        detected = (
            f" (a difference is detectable, but smaller than {delta})"
            if low > 0 or high < 0
            else ""
        )
        return f"no meaningful difference: the whole interval lies within ±{delta}{detected}"
    if verdict.endswith("not shown to reach δ"):
        side = f"above 0 and holds +{delta}" if low > 0 else f"below 0 and holds -{delta}"
        return (
            f"{verdict.split(',')[0]}, by an amount not shown to reach {delta}: "
            f"the interval lies {side}"
        )
    reaches = " and ".join(
        edge for edge, hit in ((f"-{delta}", low <= -row.smallest_difference),
                               (f"+{delta}", high >= row.smallest_difference)) if hit
    )  # fmt: skip
    return f"inconclusive: the interval holds 0 and reaches {reaches}; {_seeds_to_decide(row)}"


def _seeds_to_decide(row) -> str:
    """The seeds a decision would take, and what the number assumes."""
    if math.isnan(row.seeds_to_detect) and math.isnan(row.seeds_for_equivalence):
        return f"no number of seeds up to {MAX_SEEDS} would decide"
    return (
        f"about {_seeds(row.seeds_to_detect)} seeds would tell a true difference of "
        f"{row.smallest_difference:g} from 0 and {_seeds(row.seeds_for_equivalence)} would "
        f"show a true 0 within ±{row.smallest_difference:g} ({percent(POWER)} power each at this "
        f"level, with the seeds' sd at its {percent(SD_UPPER_CONFIDENCE)} upper limit; at the "
        f"observed sd {_seeds(row.seeds_to_detect_observed)} and "
        f"{_seeds(row.seeds_for_equivalence_observed)})"
    )


def _seeds(count: float) -> str:
    return f"more than {MAX_SEEDS}" if math.isnan(count) else f"{count:.0f}"


def headline_rst(sentences: list[str]) -> str:
    """The headline as a reStructuredText bullet list, its text escaped (the report's home page
    includes it)."""
    return "".join("- " + RST_MARKUP.sub(r"\\\g<0>", s) + "\n" for s in sentences)


# --- findings.md ----------------------------------------------------------------------------


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
        return groups(rows, [*self.conditions, f"previous_{COMPARED}", COMPARED])

    def level_at(self, row, depth_column: str, metric: str):
        key = tuple(axis_value(getattr(row, c)) for c in self.conditions)
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
    question_record: dict | None = None,
) -> str:
    """A short written answer to "does depth improve the latent representation?".

    Every sentence is derived from the tables; nothing here is fixed text about results
    (but the published reference points of `dataset`, which are cited as such).
    `question_record` is results/<study>/question.json: when the question was set.
    """
    study = _Study(summary, intervals, comparisons, primary, conditions, labels, omit)
    lines = _introduction(study, data, question_record)
    if not comparisons.empty:
        lines += _secondary(study) + _agreements(study) + _article_claims(study)
    lines += _convergence(study) + _ceilings(study, dataset) + _levels_table(study)
    if not comparisons.empty:
        lines += _primary_table(study) + _differences_table(study)
    return "\n".join(lines) + "\n"


def _introduction(study: _Study, data: str, record: dict | None) -> list[str]:
    """The headline sentences, the question and how it is answered, then what it rests on."""
    seeds = sorted(int(s) for s in study.models[REPLICATE].unique())
    depths = sorted(int(d) for d in study.models[COMPARED].unique())
    baselines = [m for m in study.summary["method"].unique() if m != AUTOENCODER]
    sentences = headline(study.summary, study.primary, study.conditions, study.labels, study.omit)
    return [
        "# Does depth improve the latent representation?",
        "",
        *(f"- **{sentence}**" for sentence in sentences),
        "",
        *_question(study, record),
        f"Data: {data}. Depths compared: {', '.join(map(str, depths))}. "
        f"Seeds trained: {len(seeds)} ({', '.join(map(str, seeds))}); a comparison pairs "
        "the models of two depths that share a seed, and each sentence names its pairs. "
        f"Baselines: {', '.join(baselines) if baselines else 'none'}.",
        "",
    ]


def provenance(record: dict | None) -> str:
    """When the question was set, as question.json recorded it: before any model of the study
    was trained, or only after some were (then it may have been chosen with results in view;
    a study older than the record cannot tell which)."""
    if not record:
        return ""
    day = str(record.get("recorded_at", ""))[:10] or "an unrecorded date"
    before = record.get("models_trained_before") or []
    if not before:
        return f" Declared before any model of this study was trained (recorded {day})."
    count = f"{len(before)} model{'s' if len(before) != 1 else ''}"
    return (
        f" Recorded only after models were trained (on {day}, when {count} existed): it may "
        "have been chosen with the results in view."
    )


def _question(study: _Study, record: dict | None) -> list[str]:
    """The primary question, when it was set, and how its verdicts are read: the one error
    rate of its family, stated once."""
    if study.primary.empty:
        return []
    first = next(study.primary.itertuples())
    delta, steps = f"{first.smallest_difference:g}", len(study.primary)
    noise = (
        f"over seeds and over the {first.n_images:,} test images (a generalized pivotal "
        "interval, docs/methods.md)"
        if first.n_images
        else "over seeds only, conditional on this test set"
        + (
            f" ({first.metric} is not a mean of independent per-image terms)"
            if first.metric not in IMAGE_MEANS
            else ""
        )
    )
    where = (
        f"Each step's interval is at {percent(first.confidence)}, so the {steps} steps' "
        f"intervals hold together with at least {percent(1 - ALPHA)} (Bonferroni)"
        if steps > 1
        else f"The step's interval is at {percent(first.confidence)}"
    )
    verdicts = f"any of these {steps} verdicts" if steps > 1 else "this verdict"
    return [
        f"Primary question: does {first.metric} change by at least {delta} (its own units) "
        f"from one depth to the next?{provenance(record)} {where}, {noise}. A verdict is read "
        f"off its interval and ±{delta}: better or worse by at least {delta} (the whole "
        f"interval at or beyond +{delta} or -{delta}), better or worse by an amount not shown "
        f"to reach {delta} (it excludes 0 but not ±{delta}), no meaningful difference (it lies "
        f"within ±{delta}), else inconclusive. The chance that {verdicts} is false is at most "
        f"{percent(ALPHA)}.",
        "",
    ]


def _secondary(study: _Study) -> list[str]:
    """Per depth step, each construct's metrics: difference, simultaneous interval, verdict."""
    rows = study.metric_rows
    count = rows.groupby([*study.conditions, COMPARED], dropna=False).size().max()
    confidence = rows["confidence"].iloc[0]
    lines = [
        "## Secondary results by construct",
        "",
        "Paired differences (deeper minus shallower) over seeds, conditional on this test set. "
        f"Each step's {count} metrics are one family: each interval is at {percent(confidence)}, "
        f"so they hold together with at least {percent(1 - ALPHA)} (Bonferroni), and each "
        "verdict is read off its interval (better or worse: it lies wholly on that side of 0; "
        "no clear difference: it holds 0). The chance that any of one step's secondary "
        f"verdicts is false is at most {percent(ALPHA)}, for each step on its own.",
        "",
    ]
    several = len(list(groups(rows, study.conditions))) > 1
    primary = set(study.primary["metric"])
    for _, group in study.steps(rows):
        first = next(group.itertuples())
        lines.append(f"- {_step_in_setting(first, study.shown, study.labels, several)}:")
        by_metric = {row.metric: row for row in group.itertuples()}
        for construct, metrics in CONSTRUCTS.items():
            parts = [
                f"{m} (the primary metric: its answer is above)"
                if m in primary
                else _difference_part(by_metric[m])
                for m in metrics
                if m in by_metric
            ]
            if parts:
                lines.append(f"  - {construct}: {'; '.join(parts)}")
    return lines


def _difference_part(row) -> str:
    """e.g. "silhouette +0.02 [-0.01, 0.05], no clear difference (higher is better)"."""
    text = interval_text(row.mean_difference, row.ci_low, row.ci_high)[0]
    direction = "higher" if row.higher_is_better else "lower"
    return f"{row.metric} {text}, {row.verdict} ({direction} is better)"


def _agreement(
    comparisons: pd.DataFrame, conditions: list[str], axis: str, labels: dict[str, str]
) -> list[str]:
    """Per depth step (and the other conditions): do the verdicts agree across `axis`'s values?"""
    others = [c for c in conditions if c != axis]
    values = list(dict.fromkeys(axis_value(v) for v in comparisons[axis]))
    lines = []
    for _, group in groups(comparisons, [*others, f"previous_{COMPARED}", COMPARED]):
        first = next(group.itertuples())
        setting = _setting(first, others, labels)
        by_metric = {
            metric: {axis_value(getattr(r, axis)): r.verdict for r in rows.itertuples()}
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
    steps = [_overfitting(study, row) for row in study.gap_rows.itertuples()]
    lines.append(
        "- Overfitting with more depth (the test loss above the training loss at the kept "
        "epoch, by a gap that grows; levels 95 % over seeds, the change at "
        f"{percent(study.gap_rows['confidence'].iloc[0])}): " + "; ".join(steps) + "."
    )
    return lines


def _overfitting(study: _Study, row) -> str:
    """One step of the overfitting claim, worded by what was measured: it holds only where the
    deeper model's test loss is above its training loss and the gap grows."""
    old = study.level_at(row, f"previous_{COMPARED}", row.metric)
    new = study.level_at(row, COMPARED, row.metric)
    change, low, high = interval_text(row.mean_difference, row.ci_low, row.ci_high)
    moves = "rises" if low > 0 else "falls" if high < 0 else "shows no clear change"
    if new is None or math.isnan(new.ci_low):
        where, above = "the test and training losses are not told apart", False
    elif new.ci_low > 0:
        where, above = "the test loss is above the training loss", True
    elif new.ci_high < 0:
        where, above = "the test loss stays below the training loss", False
    else:
        where, above = "the test and training losses are not told apart", False
    holds = "holds" if above and low > 0 else "not shown"
    return (
        f"{_step(row)}{study.setting(row)}: test - train loss "
        f"{level_text(old) if old else NA} → {level_text(new) if new else NA}, change "
        f"{change}: the gap {moves} and {where}: {holds}"
    )


def _convergence(study: _Study) -> list[str]:
    """How many seeds per depth were still improving at their last epoch."""
    models = study.models
    if "still_improving" not in models or not models["still_improving"].notna().any():
        return []
    lines = ["", "## Trained enough?", ""]
    for _, group in groups(models, [*study.conditions, COMPARED]):
        first = next(group.itertuples())
        improving = int(group["still_improving"].fillna(False).astype(bool).sum())
        lines.append(
            f"- {axis_value(getattr(first, COMPARED))} hidden layer(s){study.setting(first)}: "
            f"{improving} of {len(group)} seeds still "
            "improving at their last epoch (held-out loss slope over the last 10 epochs "
            f"{group['val_slope_last10'].mean():.2g} per epoch)"
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
        lines.append(f"- {row.method}{study.setting(row)}: {level_text(row)} (this study)")
    best = intervals[(intervals["method"] == AUTOENCODER) & (intervals["metric"] == "knn_accuracy")]
    if not best.empty:
        top = next(best.loc[[best["mean"].idxmax()]].itertuples())
        lines.append(
            f"- best autoencoder: {level_text(top)} at "
            f"{axis_value(getattr(top, COMPARED))} hidden layer(s)" + study.setting(top)
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
    for _, group in groups(study.intervals, ["method", *conditions, COMPARED]):
        first = next(group.itertuples())
        setting = _setting(first, study.shown, study.labels)
        count = NA
        if first.method == AUTOENCODER:
            name = f"{axis_value(getattr(first, COMPARED))} hidden layer(s)"
            key = (*(getattr(first, c) for c in conditions), getattr(first, COMPARED))
            if params is not None and key in params.index:
                count = f"{int(params.loc[key]):,}"
        else:
            name = f"baseline {first.method}"
        table = group.set_index("metric")
        cells = [
            level_text(next(table.loc[[m]].itertuples())) if m in table.index else NA
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
    """The primary question per step: the interval its verdict is read off, the noise parts
    and the seeds to decide."""
    conditions = study.conditions
    lines = _table_head(
        study,
        "## Primary question in detail",
        ["depths", "pairs", "difference [interval]", "level", "p (Bonferroni)", "verdict",
         "seed part of the variance", "image part",
         "seeds to tell δ from 0 (pessimistic / observed sd)",
         "seeds to show none (pessimistic / observed sd)"],
    )  # fmt: skip
    for row in study.primary.itertuples():
        values = "".join(f"{axis_value(getattr(row, c))} | " for c in conditions)
        text = interval_text(row.mean_difference, row.ci_low, row.ci_high, row.smallest_difference)
        cells = [
            f"{row.n_pairs}",
            text[0],
            percent(row.confidence),
            NA if math.isnan(row.p_adjusted) else f"{row.p_adjusted:.2g}",
            row.verdict.replace("δ", f"{row.smallest_difference:g}"),
            *(NA if math.isnan(v) else f"{v:.2g}" for v in (row.seed_variance, row.image_variance)),
            *(
                f"{_seeds(a)} / {_seeds(b)}" if row.n_pairs >= 2 else NA
                for a, b in (
                    (row.seeds_to_detect, row.seeds_to_detect_observed),
                    (row.seeds_for_equivalence, row.seeds_for_equivalence_observed),
                )
            ),
        ]
        lines.append(f"| {values}{_step(row)} | " + " | ".join(cells) + " |")
    return lines


def _differences_table(study: _Study) -> list[str]:
    """Every paired comparison over seeds: difference, interval, Bonferroni p, verdict, d_z."""
    conditions = study.conditions
    lines = _table_head(
        study,
        "## Paired differences over seeds (deeper minus shallower)",
        ["depths", "metric", "better if", "difference [interval]", "level", "p (Bonferroni)",
         "verdict", "d_z [95 %]"],
    )  # fmt: skip
    for row in study.comparisons.itertuples():
        values = "".join(f"{axis_value(getattr(row, c))} | " for c in conditions)
        effect = (
            NA
            if math.isnan(row.effect_size)
            else f"{row.effect_size:.2g} [{row.effect_low:.2g}, {row.effect_high:.2g}]"
        )
        p_adjusted = NA if math.isnan(row.p_adjusted) else f"{row.p_adjusted:.2g}"
        lines.append(
            f"| {values}{_step(row)} | "
            f"{row.metric} | {'higher' if row.higher_is_better else 'lower'} | "
            f"{interval_text(row.mean_difference, row.ci_low, row.ci_high)[0]} | "
            f"{percent(row.confidence)} | {p_adjusted} | {row.verdict} | {effect} |"
        )
    return lines
