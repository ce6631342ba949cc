"""Studies side by side: each study's config snapshot and headline numbers in one table.

Every study writes its resolved config to results/<study>/study.yaml. `compare_studies`
reads those snapshots and each study's depth_intervals.csv and returns one row per study:
`study`, the config keys whose values differ between the studies (nested keys dotted, e.g.
`training_regimes.converged.epochs`), then per autoencoder group (e.g. `depth1_dim2`) and
headline metric the mean over seeds and its 95 % interval (docs/outputs.md, "Studies side by side").
Every study also records its primary question and when it was set, in question.json
(`record_question`): which of its models were trained by then.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aedepth.files import atomic_output, html_page, read_table
from aedepth.grid import AUTOENCODER, HEADLINE_METRICS, PATHS, REPLICATE, group_id, read_axes
from aedepth.jobs import UserFacingError

if TYPE_CHECKING:  # pandas is imported where a table is built: Snakemake imports this module
    import pandas as pd  # on every start (common.smk), and pandas adds ~1.2 s to each

SNAPSHOT = "study.yaml"  # in each study's folder
INTERVALS = "depth_intervals.csv"
INTERVAL_COLUMNS = ("method", "metric", "mean", "ci_low", "ci_high")  # what compare reads
# What `compare` says where results/ holds no finished study (before any job, and in its job).
NO_STUDY = (
    "no finished study under results/ to compare: run one first "
    "(snakemake --cores 4 --config source=sample study=a epochs=3)"
)
STATISTICS = ("mean", "ci_low", "ci_high")  # columns of depth_intervals.csv
_HEADLINE = re.compile(
    rf"^(?P<group>.+)_(?P<metric>{'|'.join(HEADLINE_METRICS)})(?:_(?P<statistic>ci_low|ci_high))?$"
)


# In each study's folder: the primary question and when it was set, as recorded, not asserted.
QUESTION = "question.json"
QUESTION_KEYS = ("primary_metric", "smallest_difference", "recorded_at", "models_trained_before")


def trained_runs(models: str | Path) -> list[str]:
    """The run ids under the study's `models` folder whose weights file exists, sorted (a run
    still training has at most its checkpoint there; its weights appear once it has ended)."""
    weights = Path(PATHS["weights"]).name
    folder = Path(models)
    if not folder.is_dir():
        return []
    return sorted(run.name for run in folder.iterdir() if (run / weights).is_file())


def record_question(
    path: str | Path,
    primary_metric: str,
    smallest_difference: float,
    models: str | Path,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write question.json: the primary question, when it was recorded (UTC, to the second)
    and the runs whose models were trained by then (`models_trained_before`; empty when the
    question was set before any model of the study). A record of the same question is kept
    as it was (its job reruns when its code changes, which changes no question)."""
    question = {"primary_metric": primary_metric, "smallest_difference": smallest_difference}
    record = _recorded(path)
    if record is None or any(record.get(key) != value for key, value in question.items()):
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        record = question | {
            "recorded_at": moment.isoformat(timespec="seconds"),
            "models_trained_before": trained_runs(models),
        }
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _recorded(path: str | Path) -> dict[str, Any] | None:
    """The record in `path`, if it holds one; a missing or damaged file is no record."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(key not in record for key in QUESTION_KEYS):
        return None
    return record


def write_snapshot(config: dict[str, Any], study: str, path: str | Path) -> None:
    """The config as the study ran it, its resolved name first, as YAML."""
    snapshot = {"study": study} | {key: value for key, value in config.items() if key != "study"}
    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(snapshot, sort_keys=False, default_flow_style=None))


def find_studies(results: str | Path) -> list[Path]:
    """The study folders under `results` that hold a snapshot and intervals, sorted by name."""
    return sorted(
        folder
        for folder in Path(results).iterdir()
        if (folder / SNAPSHOT).is_file() and (folder / INTERVALS).is_file()
    )


def study_digest(folder: str | Path) -> str:
    """sha256 of a study's snapshot and intervals: what `compare` reads of it."""
    digest = hashlib.sha256()
    for name in (SNAPSHOT, INTERVALS):
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys ({"a": {"b": 1}} -> {"a.b": 1}); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differing_keys(snapshots: list[dict[str, Any]]) -> list[str]:
    """The (flattened) config keys whose values are not the same in every snapshot, in the
    order they first appear; a key one snapshot lacks differs; `study` is the row's name."""
    flats = [flatten(snapshot) for snapshot in snapshots]
    keys = list(dict.fromkeys(key for flat in flats for key in flat if key != "study"))
    missing = object()
    return [key for key in keys if len({_cell(flat.get(key, missing)) for flat in flats}) > 1]


def _cell(value: Any) -> Any:
    """A config value as a table cell: lists and mappings as compact JSON."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value if isinstance(value, (str, int, float, type(None))) else repr(value)


def headline_columns(snapshot: dict[str, Any], intervals: pd.DataFrame) -> dict[str, float]:
    """The study's headline columns: for each autoencoder group (its id, as in the figures'
    file names) and each of HEADLINE_METRICS, "{group}_{metric}" (the mean over seeds),
    "..._ci_low" and "..._ci_high"."""
    axes = read_axes(snapshot)
    by_group: dict[str, dict[str, pd.Series]] = {}
    for _, row in intervals[intervals["method"] == AUTOENCODER].iterrows():
        # each value as the config lists it: pandas reads depth 1 as 1.0 where baselines
        # leave the column empty, and ids spell 1.0 differently
        values = {
            axis.name: next(
                (v for v in snapshot[axis.values_key] if v == row[axis.name]), row[axis.name]
            )
            for axis in axes
            if axis.name != REPLICATE
        }
        by_group.setdefault(group_id(axes, values), {})[row["metric"]] = row
    columns: dict[str, float] = {}
    for group, metrics in by_group.items():
        for metric in HEADLINE_METRICS:
            if metric in metrics:
                for statistic in STATISTICS:
                    columns[_headline_column(group, metric, statistic)] = metrics[metric][statistic]
    return columns


def _headline_column(group: str, metric: str, statistic: str) -> str:
    return f"{group}_{metric}" + ("" if statistic == "mean" else f"_{statistic}")


def _split(column: str) -> tuple[str, str, str] | None:
    """A headline column's (group, metric, statistic), e.g. "depth1_dim2_silhouette_ci_low"
    -> ("depth1_dim2", "silhouette", "ci_low"); None for a config column."""
    match = _HEADLINE.match(column)
    return (match["group"], match["metric"], match["statistic"] or "mean") if match else None


def read_snapshot(path: str | Path) -> dict[str, Any]:
    try:
        snapshot = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserFacingError(f"cannot read the study snapshot {path}: {error}") from None
    missing = [k for k in ("study", "axes") if not isinstance(snapshot, dict) or k not in snapshot]
    if missing:
        raise UserFacingError(
            f"{path} is not a study snapshot (no {', '.join(map(repr, missing))} key): delete "
            "it, or rerun that study"
        )
    return snapshot


def compare_studies(snapshots: list[str | Path], intervals: list[str | Path]) -> pd.DataFrame:
    """One row per study (snapshot i with intervals i), sorted by name: `study`, the config
    keys that differ between them, then every study's headline columns (empty where a study
    lacks that group)."""
    import pandas as pd

    configs = [read_snapshot(path) for path in snapshots]
    differing = differing_keys(configs)
    rows = []
    for config, path in zip(configs, intervals):
        flat = flatten(config)
        row = {"study": str(config["study"])}
        row |= {key: _cell(flat.get(key)) for key in differing}
        rows.append(row | headline_columns(config, read_table(path, INTERVAL_COLUMNS)))
    # columns in first-seen order: a group only a later study has comes after the others
    return pd.DataFrame(rows).sort_values("study", ignore_index=True)


def studies_html(table: pd.DataFrame, significant_digits: int = 3) -> str:
    """The table of compare_studies as a page: the differing config values, then one cell
    "mean [ci_low, ci_high]" per group and metric, under a two-row header."""
    import pandas as pd

    cells: dict[tuple[str, str], list[str]] = {}
    for column in table.columns:
        parts = _split(column)
        if parts is None:
            cells[("config", column)] = [_text(value) for value in table[column]]
        elif parts[2] == "mean":
            group, metric, _ = parts
            cells[(group, metric)] = [
                _interval(mean, low, high, significant_digits)
                for mean, low, high in zip(
                    table[column], table[f"{column}_ci_low"], table[f"{column}_ci_high"]
                )
            ]
    frame = pd.DataFrame(cells)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return html_page(
        "Studies side by side",
        "<h1>Studies side by side</h1>\n<p>One row per study under results/: the config values "
        "that differ between them, then per depth (and condition) the mean over seeds "
        f"[95 % interval].</p>\n{frame.to_html(index=False)}",
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _interval(mean: float, low: float, high: float, digits: int) -> str:
    if _missing(mean):
        return ""
    if _missing(low) or _missing(high):  # a single seed has no interval
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"
