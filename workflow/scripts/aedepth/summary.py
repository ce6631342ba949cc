"""The summary table: one row per model plus the PCA reference, a documented schema."""

from __future__ import annotations

import pandas as pd

from aedepth.metrics import METRICS, representative_seed

ID_COLUMNS = ("model", "method", "depth", "seed", "latent_dim", "n_test")
SUMMARY_COLUMNS = (*ID_COLUMNS, *METRICS)


def summary_table(records: list[dict]) -> pd.DataFrame:
    """Rows sorted by depth then seed, the PCA row (method "pca", no depth or seed) last."""
    table = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    for column in ("depth", "seed"):
        table[column] = table[column].astype("Int64")
    table = table.sort_values(["depth", "seed"], na_position="last", kind="stable")
    return table.reset_index(drop=True)


def representatives(records: list[dict]) -> dict[int, int]:
    """For each depth, the position in `records` of the seed with the median kNN accuracy."""
    by_depth: dict[int, dict[int, int]] = {}
    for position, record in enumerate(records):
        by_depth.setdefault(record["depth"], {})[record["seed"]] = position
    chosen = {}
    for depth, positions in sorted(by_depth.items()):
        seed = representative_seed({s: records[p]["knn_accuracy"] for s, p in positions.items()})
        chosen[depth] = positions[seed]
    return chosen
