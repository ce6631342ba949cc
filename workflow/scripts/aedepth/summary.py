"""The summary table: one row per run of the grid, models then baselines; a documented schema."""

from __future__ import annotations

import numbers

import pandas as pd

from aedepth.grid import REPLICATE, sort_order
from aedepth.metrics import METRICS

# Training losses (mean per-pixel BCE) at the epoch whose weights were kept; empty for baselines.
LOSS_COLUMNS = ("kept_epoch", "train_loss", "val_loss", "test_loss", "loss_gap")


def summary_columns(axes: list[str]) -> list[str]:
    return ["model", "method", *axes, "n_test", *METRICS, *LOSS_COLUMNS]


def kept_losses(history: pd.DataFrame) -> dict:
    """The losses of the epoch whose weights a model kept (history.csv's `kept` row).

    `loss_gap` is test minus train loss: a growing gap is overfitting, as the article warns.
    """
    (kept,) = history[history["kept"] == 1].itertuples()
    return {
        "kept_epoch": int(kept.epoch),
        "train_loss": float(kept.train_loss),
        "val_loss": float(kept.val_loss),
        "test_loss": float(kept.test_loss),
        "loss_gap": float(kept.test_loss - kept.train_loss),
    }


def summary_table(records: list[dict], axes: list[str], methods: list[str]) -> pd.DataFrame:
    """Rows by method (in `methods` order), then by `sort_order(axes)`; a baseline's cells of
    the axes it does not use, and its loss cells, are empty."""
    table = pd.DataFrame.from_records(records, columns=summary_columns(axes))
    for column in (*axes, "kept_epoch"):
        present = [r[column] for r in records if r.get(column) is not None]
        if all(isinstance(v, numbers.Integral) for v in present):  # not floats for empty cells
            table[column] = table[column].astype("Int64")
    rank = table["method"].map({method: i for i, method in enumerate(methods)})
    table = table.assign(_rank=rank).sort_values(
        ["_rank", *sort_order(axes)], kind="stable", na_position="first"
    )
    return table.drop(columns="_rank").reset_index(drop=True)


def representative_seed(knn_by_seed: dict[int, float]) -> int:
    """The seed whose kNN accuracy is the median (the lower middle one for an even count)."""
    ranked = sorted(knn_by_seed, key=lambda seed: (knn_by_seed[seed], seed))
    return ranked[(len(ranked) - 1) // 2]


def representatives(records: list[dict], axes: list[str]) -> dict[tuple, int]:
    """For each setting of the axes other than the seed (in sort order), the position in
    `records` of its median-kNN seed."""
    keys = [a for a in sort_order(axes) if a != REPLICATE]
    groups: dict[tuple, dict[int, int]] = {}
    for position, record in enumerate(records):
        key = tuple(record[a] for a in keys)
        groups.setdefault(key, {})[record[REPLICATE]] = position
    chosen = {}
    for key, positions in sorted(groups.items()):
        seed = representative_seed({s: records[p]["knn_accuracy"] for s, p in positions.items()})
        chosen[key] = positions[seed]
    return chosen
