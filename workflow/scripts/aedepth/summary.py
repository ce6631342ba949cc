"""The summary table: one row per run of the grid, models then baselines; a documented schema."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from aedepth.grid import REPLICATE, sort_order
from aedepth.metrics import METRICS

# Training losses (mean per-pixel BCE) at the epoch whose weights were kept; empty for baselines.
LOSS_COLUMNS = ("kept_epoch", "train_loss", "val_loss", "test_loss", "loss_gap")
# The model's size (hidden widths as "500-300-100", weights and biases); empty for baselines.
SIZE_COLUMNS = ("params", "widths")
# The training budget: the most epochs a model could train, and the early-stopping patience
# (0: none); empty for baselines.
BUDGET_COLUMNS = ("epochs", "early_stopping_patience")
# Was the model still learning when training ended? The least-squares slope of the held-out
# loss (validation loss, or the test loss without a validation split) per epoch over the last
# SLOPE_EPOCHS epochs, and whether it fell by more than IMPROVING of its last value over them.
CONVERGENCE_COLUMNS = ("val_slope_last10", "still_improving")
SLOPE_EPOCHS = 10
IMPROVING = 0.001


def summary_columns(axes: list[str]) -> list[str]:
    return [
        "model", "method", *axes, "n_test", *SIZE_COLUMNS, *BUDGET_COLUMNS, *METRICS, *LOSS_COLUMNS,
        *CONVERGENCE_COLUMNS,
    ]  # fmt: skip


def size_columns(hparams: dict) -> dict:
    return {
        "params": int(hparams["params"]),
        "widths": "-".join(str(w) for w in hparams["widths"]),
    }


def budget_columns(hparams: dict) -> dict:
    return {key: int(hparams[key]) for key in BUDGET_COLUMNS}


def convergence(history: pd.DataFrame, epochs: int = SLOPE_EPOCHS) -> dict:
    """`val_slope_last10` and `still_improving` (see CONVERGENCE_COLUMNS); NaN and None for
    fewer than 3 epochs, too few to call a trend."""
    held_out = "val_loss" if history["val_loss"].notna().any() else "test_loss"
    tail = history.sort_values("epoch").tail(epochs).dropna(subset=[held_out])
    if len(tail) < 3:
        return {"val_slope_last10": float("nan"), "still_improving": None}
    slope = float(np.polyfit(tail["epoch"], tail[held_out], 1)[0])
    fall = -slope * (len(tail) - 1)
    return {
        "val_slope_last10": slope,
        "still_improving": bool(fall > IMPROVING * float(tail[held_out].iloc[-1])),
    }


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
    for column in (*axes, *BUDGET_COLUMNS, "kept_epoch", "params"):
        present = [r[column] for r in records if r.get(column) is not None]
        if all(isinstance(v, numbers.Integral) for v in present):  # not floats for empty cells
            table[column] = table[column].astype("Int64")
    table["still_improving"] = table["still_improving"].astype("boolean")
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
