"""Latent embeddings as Parquet: one row per image, a documented and stable schema.

Columns: split (string: "train" | "test"), index (int32, row within its split),
label (int32, digit 0-9), z0 ... z{k-1} (float32). The file's key-value metadata holds
"aedepth" -> JSON with depth, seed, widths, latent_dim and data source.

A model's per-image scores (per_image/<run>.parquet): index (int32, row of the test split),
then one float64 column per metric of aedepth.metrics.PER_IMAGE the run has (kNN accuracy
1.0 or 0.0, the silhouette, the image's mean per-pixel BCE and MSE); the metric's value in the
metrics JSON is the column's mean (up to float32 rounding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aedepth.files import atomic_output

METADATA_KEY = b"aedepth"


def latent_table(splits: dict[str, tuple[np.ndarray, np.ndarray]], metadata: dict) -> pa.Table:
    """Build the table from {split: (latents (N, k), labels (N,))}."""
    latent_dim = next(iter(splits.values()))[0].shape[1]
    columns: dict[str, list] = {"split": [], "index": [], "label": []}
    columns.update({f"z{i}": [] for i in range(latent_dim)})
    for split, (latents, labels) in splits.items():
        columns["split"].append(pa.array([split] * len(labels), pa.string()))
        columns["index"].append(pa.array(np.arange(len(labels), dtype=np.int32)))
        columns["label"].append(pa.array(labels.astype(np.int32)))
        for i in range(latent_dim):
            columns[f"z{i}"].append(pa.array(latents[:, i].astype(np.float32)))
    table = pa.table({name: pa.concat_arrays(parts) for name, parts in columns.items()})
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})


def write_latents(path: str | Path, table: pa.Table) -> None:
    """Write atomically: a killed job never leaves a complete-looking file."""
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


def read_latents(path: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """Return ({split: (latents float32 (N, k), labels (N,))}, metadata)."""
    table = pq.read_table(path)
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    z_columns = [name for name in table.column_names if name.startswith("z")]
    split = table.column("split").to_numpy(zero_copy_only=False)
    latents = np.column_stack([table.column(c).to_numpy() for c in z_columns]).astype(np.float32)
    labels = table.column("label").to_numpy()
    splits = {}
    for name in ("train", "test"):
        mask = split == name
        splits[name] = (latents[mask], labels[mask])
    return splits, metadata


def write_per_image(path: str | Path, per_image: dict[str, np.ndarray]) -> None:
    """Write a run's per-image scores atomically (see the module docstring)."""
    count = len(next(iter(per_image.values())))
    columns = {"index": pa.array(np.arange(count, dtype=np.int32))}
    columns |= {
        name: pa.array(np.asarray(values, np.float64)) for name, values in per_image.items()
    }
    with atomic_output(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def read_per_image(path: str | Path, metric: str) -> np.ndarray | None:
    """One metric's per-image values in test-split order; None where the run has no column
    for it (a metric that is not a mean over images)."""
    table = pq.read_table(path)
    if metric not in table.column_names:
        return None
    order = np.argsort(table.column("index").to_numpy(), kind="stable")
    return table.column(metric).to_numpy()[order]
