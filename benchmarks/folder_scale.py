"""How long does Snakemake take to read and plan a study of a large image folder?

Run from the repository root (about 2 minutes on a 2-CPU machine with the defaults):

    .venv/bin/python benchmarks/folder_scale.py

An image folder's files are the prepare job's inputs, one each, so Snakemake lists and dates
every image each time it plans. This writes --images seeded random RGB PNGs (32 x 32 by
default) as one folder per class (10 classes, no train/ or test/: the workflow splits them),
copies the workflow next to it (data_memory.py's copy_workflow) and times, with the
real `snakemake` command line: a dry run before the data exists (parse and plan), the prepare
job alone (`--until prepare_data`: listing, decoding and the .npz; its Snakemake benchmark
gives the seconds and peak memory), and a dry run once it exists. One row per step, with the
CPU model. With --workdir the folder and results stay there.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aedepth.cpus import cpu_model
from data_memory import REPO, copy_workflow  # benchmarks/, on the path of a script run from it

CLASSES = 10


def write_folder(root: Path, images: int, size: int) -> None:
    generator = np.random.default_rng(0)
    for index in range(images):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")


def timed_snakemake(workdir: Path, *args: str) -> float:
    started = time.perf_counter()
    command = [str(Path(sys.executable).parent / "snakemake"), *args]
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, help="keep the folder and results here")
    parser.add_argument("--csv", type=Path, default=REPO / "benchmarks/folder_scale.csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.workdir or Path(scratch)
        folder, workdir = base / "images", base / "study"
        started = time.perf_counter()
        write_folder(folder, args.images, args.size)
        written = time.perf_counter() - started
        copy_workflow(workdir)
        config = ["--config", f"source={folder}", "dataset=big"]
        rows = [("write the PNGs (not the workflow)", written, "")]
        rows.append(("dry run, no data yet", timed_snakemake(workdir, "-n", *config), ""))
        prepare = timed_snakemake(workdir, "--cores", "2", "--until", "prepare_data", *config)
        [tsv] = (workdir / "results/data").glob("big-imagefolder-*/benchmarks/prepare_data.tsv")
        with tsv.open() as handle:
            job = next(csv.DictReader(handle, delimiter="\t"))
        rows.append(("prepare_data (snakemake, whole command)", prepare, job["max_rss"]))
        rows.append(("  of which the job (its benchmark)", float(job["s"]), job["max_rss"]))
        rows.append(("dry run, data prepared", timed_snakemake(workdir, "-n", *config), ""))
    print(
        f"{args.images:,} PNGs of {args.size}x{args.size}x3 in {CLASSES} class folders; CPU: {cpu_model()}"
    )
    print("| step | seconds | peak MiB |\n| --- | ---: | ---: |")
    for step, seconds, rss in rows:
        print(f"| {step} | {seconds:.1f} | {rss} |")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "seconds", "max_rss_mib", "images", "cpu"])
        writer.writerows(
            [(step, f"{s:.2f}", rss, args.images, cpu_model()) for step, s, rss in rows]
        )


if __name__ == "__main__":
    main()
