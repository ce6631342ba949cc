"""How close a study's training came to the hardware: its FLOPs against the fp32 matmul peak.

The FLOP limit of a study is its training FLOPs (6 x multiply-adds x training images x
epochs: forward 2, backward 4, the usual count; aedepth.families counts each family's) divided
by the machine's fp32 matmul peak (a 2048^3 product on all usable CPUs, on the faster of
torch's default and the oneDNN route): no training can take less. `study_line` puts an actual run next to it, from the files the
workflow writes in a study's folder (results/<study>/benchmarks/**.tsv, models/*/hparams.json and
history.csv).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from aedepth.families import family_of
from aedepth.grid import model_shape


def training_flop(hparams: dict, images: int, epochs: int) -> float:
    """Training FLOPs of the model these hyperparameters describe, as its family counts them
    (aedepth.families; the MLP's: 6 x parameters x images x epochs)."""
    family = family_of(hparams)
    shape = model_shape(hparams)
    return family.training_flop(hparams["widths"], hparams["latent_dim"], shape, images) * epochs


def fp32_peak(threads: int, size: int = 2048, repeats: int = 8) -> dict[str, float]:
    """GFLOP/s of the best of `repeats` fp32 (size^3) matmuls on `threads` threads, per fp32
    route proven exact here: {"default": ..., "onednn-fp32": ...}."""
    import torch

    from aedepth.speed import exact_routes, matmul_route

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    peaks = {}
    try:
        for route in exact_routes(torch.device("cpu"), [(size, size)], set(), {size}):
            with matmul_route(route):
                a @ b
                best = float("inf")
                for _ in range(repeats):
                    started = time.perf_counter()
                    a @ b
                    best = min(best, time.perf_counter() - started)
            peaks[route] = 2 * size**3 / best / 1e9
    finally:
        torch.set_num_threads(previous)
    return peaks


def benchmarked_peak(table: Path) -> float | None:
    """The fp32 peak (GFLOP/s) benchmarks/train_speed.py last wrote to `table` (its
    "matmul peak" row), or None where it has not run here. The workflow never measures it:
    a 2048^3 matmul on every CPU of the Snakemake process would load a cluster's login node."""
    try:
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return None
    peaks = [
        float(row["gflop_per_s"]) for row in rows if row.get("loop", "").startswith("matmul peak")
    ]
    return max(peaks) if peaks else None


def _benchmarks(folder: Path) -> list[tuple[Path, float, float]]:
    """(tsv, start, seconds) of every job benchmark under `folder`; start from the file's
    mtime (written when the job ended) minus its seconds."""
    jobs = []
    for tsv in folder.rglob("*.tsv"):
        try:
            with open(tsv, newline="") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
            seconds = float(rows[-1]["s"])
        except (OSError, KeyError, ValueError, IndexError):
            continue
        jobs.append((tsv, tsv.stat().st_mtime - seconds, seconds))
    return jobs


def study_line(
    results: Path, training_images: int, peak_gflops: float | None, since: float = 0.0
) -> str | None:
    """One line: the training FLOPs of the models trained since `since` (a time stamp) and
    their speed, the wall time of the jobs run since then (first start to last end, every
    rule) and, given the fp32 peak (benchmarked_peak), the FLOP limit and their ratio; None
    where no training job ran since then."""
    jobs = [job for job in _benchmarks(results / "benchmarks") if job[1] >= since - 1]
    trained = [tsv.stem for tsv, _, _ in jobs if tsv.parent.name == "train"]
    if not trained:
        return None
    flop = train_seconds = 0.0
    for run in trained:
        folder = results / "models" / run
        try:
            hparams = json.loads((folder / "hparams.json").read_text())
            with open(folder / "history.csv") as handle:
                epochs = max(0, sum(1 for _ in handle) - 1)
        except (OSError, ValueError):
            continue
        fitted = round(training_images * (1 - hparams.get("validation_fraction", 0)))
        flop += training_flop(hparams, fitted, epochs)
    train_jobs = [job for job in jobs if job[0].parent.name == "train"]
    train_seconds = max(s + d for _, s, d in train_jobs) - min(s for _, s, _ in train_jobs)
    wall = max(start + seconds for _, start, seconds in jobs) - min(s for _, s, _ in jobs)
    speed = flop / train_seconds / 1e9
    line = (
        f"aedepth: {len(trained)} model(s), {flop / 1e12:.3g} TFLOP of training at "
        f"{speed:.0f} GFLOP/s; the jobs took {wall:.0f} s"
    )
    if not peak_gflops:
        return line + " (python benchmarks/train_speed.py measures the fp32 peak to compare)"
    limit = flop / (peak_gflops * 1e9)
    return (
        f"{line} = {wall / limit:.2f} x the training-FLOP limit ({limit:.3g} s); training ran "
        f"at {100 * speed / peak_gflops:.0f} % of the fp32 peak benchmarks/train_speed.py "
        f"measured ({peak_gflops:.0f} GFLOP/s)"
    )
