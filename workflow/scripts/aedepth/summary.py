"""The summary table: one row per model plus the PCA reference, a documented schema."""

from __future__ import annotations

import pandas as pd

from aedepth.metrics import METRICS, representative_seed

ID_COLUMNS = ("model", "method", "depth", "seed", "latent_dim", "n_test")
# Training losses (mean per-pixel BCE) at the epoch whose weights were kept; empty for PCA.
LOSS_COLUMNS = ("kept_epoch", "train_loss", "val_loss", "loss_gap")
SUMMARY_COLUMNS = (*ID_COLUMNS, *METRICS, *LOSS_COLUMNS)


def summary_table(records: list[dict]) -> pd.DataFrame:
    """Models by latent size, depth and seed; the PCA rows (no depth or seed) last."""
    table = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    for column in ("depth", "seed", "kept_epoch"):
        table[column] = table[column].astype("Int64")
    table["is_pca"] = table["method"] == "pca"
    table = table.sort_values(["is_pca", "latent_dim", "depth", "seed"], kind="stable")
    table = table.drop(columns="is_pca")
    return table.reset_index(drop=True)


def representatives(records: list[dict]) -> dict[tuple[int, int], int]:
    """For each (latent size, depth), the position in `records` of its median-kNN seed."""
    groups: dict[tuple[int, int], dict[int, int]] = {}
    for position, record in enumerate(records):
        key = (record["latent_dim"], record["depth"])
        groups.setdefault(key, {})[record["seed"]] = position
    chosen = {}
    for key, positions in sorted(groups.items()):
        seed = representative_seed({s: records[p]["knn_accuracy"] for s, p in positions.items()})
        chosen[key] = positions[seed]
    return chosen
