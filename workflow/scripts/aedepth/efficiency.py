"""How close a study's training came to the hardware: its FLOPs against the fp32 matmul peak.

The FLOP limit of a study is its training FLOPs (6 x parameters x training images x epochs:
forward 2, backward 4, the usual count) divided by the machine's fp32 matmul peak (a
2048^3 product on all usable CPUs, on the faster of torch's default and the oneDNN route):
no training can take less. `study_line` puts an actual run next to it, from the files the
workflow writes in a study's folder (results/<study>/benchmarks/**.tsv, models/*/hparams.json and
history.csv).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path

from aedepth.cpus import cpu_model
from aedepth.grid import parameter_count


def training_flop(widths: list[int], latent_dim: int, images: int, epochs: int) -> float:
    """Training FLOPs: 6 x parameters x images x epochs."""
    return 6.0 * parameter_count(widths, latent_dim) * images * epochs


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


def best_peak(
    path: Path, threads: int, measure: Callable[[int], dict[str, float]] = fp32_peak
) -> float:
    """The machine's fp32 peak in GFLOP/s on `threads` threads: measured now (about 2 s) and
    kept in `path` per CPU model, thread count and torch version if higher than any
    measurement before. Other processes, or a VM's neighbours, only ever lower a measurement
    (on a 2-vCPU VM one read 123 GFLOP/s, another 170), so the highest seen is the truest."""
    import torch

    key = f"{cpu_model()} | {threads} thread(s) | torch {torch.__version__}"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    measured = max(measure(threads).values())
    if measured > cache.get(key, 0):
        cache[key] = measured
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, indent=2) + "\n")
    return cache[key]


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
    results: Path,
    training_images: int,
    peak_gflops: float | Callable[[], float],
    since: float = 0.0,
) -> str | None:
    """One line: the training FLOPs of the models trained since `since` (a time stamp), the
    wall time of the jobs run since then (first start to last end, every rule), the FLOP
    limit and their ratio; None where no training job ran since then. `peak_gflops` may be
    a function, called only where there is a line to write (measuring takes seconds)."""
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
        flop += training_flop(hparams["widths"], hparams["latent_dim"], fitted, epochs)
    if callable(peak_gflops):
        peak_gflops = peak_gflops()
    train_jobs = [job for job in jobs if job[0].parent.name == "train"]
    train_seconds = max(s + d for _, s, d in train_jobs) - min(s for _, s, _ in train_jobs)
    wall = max(start + seconds for _, start, seconds in jobs) - min(s for _, s, _ in jobs)
    limit = flop / (peak_gflops * 1e9)
    return (
        f"aedepth: {len(trained)} model(s), {flop / 1e12:.3g} TFLOP of training at "
        f"{flop / train_seconds / 1e9:.0f} GFLOP/s ({100 * flop / train_seconds / 1e9 / peak_gflops:.0f} % "
        f"of this machine's fp32 peak, {peak_gflops:.0f} GFLOP/s); the jobs took {wall:.0f} s "
        f"= {wall / limit:.2f} x the training-FLOP limit ({limit:.3g} s)"
    )
