"""Does every job of the workflow stay under a memory limit on a CIFAR-10-sized dataset?

Run from the repository root (about 4-5 minutes on a 2-CPU machine with the defaults):

    .venv/bin/python benchmarks/data_memory.py

The acceptance point it checks: "A 50,000 x 32 x 32 x 3 uint8 dataset (CIFAR-10's size,
generated) prepares and trains one epoch with every job's peak RSS under 1.5 GB."

It generates a seeded .npz source of --images training and --test-images test RGB images
(uint8, 32 x 32 x 3 by default; 10 classes of coloured shapes on noise; written chunk by chunk
into the archive, so the generator itself stays small), copies the workflow next to it (the
files tests/conftest.py's copy_workflow copies) and runs the real `snakemake` command line
there, by default the whole study: one epoch, seed 0, depths 1-3 of both model families (mlp
and conv), no baselines, `--cores 2` (`--until RULE ...` stops after those rules, as
Snakemake's own option). Then it reads every job's Snakemake benchmark file
(results/data/<folder>/benchmarks/prepare_data.tsv, results/<study>/benchmarks/<rule>/*.tsv)
and prints one row per job: its seconds and `max_rss`. Snakemake samples a job's memory (its
process and children, summed) every 0.5 s for 15 s, then every 30 s, so a short peak of a long
job can fall between two samples; the run therefore also records each Python process's exact
high-water mark (the kernel's VmHWM, written at exit by a `sitecustomize` put on the jobs'
PYTHONPATH; no workflow file changes), which covers the jobs that have no benchmark file too,
and the largest peak of any process of the run over its whole life, which the kernel reports
when it ends (ru_maxrss of the children: this one also counts a job's interpreter shut-down,
which can add ~100 MiB of torch's library pages after the per-job reading). It passes when
the largest of these readings is at most --limit-mb (MiB, as Snakemake counts them; 1.5 GB =
1536) and exits 1 otherwise. A CSV per job goes to --csv; with --workdir the
data, the study's results and Snakemake's log (snakemake.log) stay there.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from aedepth.cpus import cpu_model

REPO = Path(__file__).resolve().parents[1]
# What a user's clone holds that the workflow needs, as tests/conftest.py copies it.
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "envs", "profiles", "requirements.txt")
CHUNK = 2_000  # images generated (and held) at a time
CLASSES = [
    "red circle",
    "green square",
    "blue triangle",
    "yellow cross",
    "magenta ring",
    "cyan circle",
    "orange square",
    "purple triangle",
    "white cross",
    "lime ring",
]
COLOURS = np.array(
    [
        (230, 40, 40),
        (40, 200, 60),
        (50, 70, 230),
        (235, 220, 40),
        (220, 50, 220),
        (40, 220, 230),
        (245, 140, 30),
        (140, 50, 200),
        (245, 245, 245),
        (160, 240, 60),
    ],
    dtype=np.float32,
)
COLUMNS = ("rule", "job", "seconds", "max_rss_mb", "exact_peak_mb")
# Written next to the run and put first on its PYTHONPATH: every Python process of the run
# (Snakemake and each job's script) appends its own peak RSS at exit.
PROBE = """\
import atexit, json, os, resource, sys


def _hwm_kib():
    # this address space's own high-water mark; ru_maxrss also holds the mark of the process
    # that vfork'ed this one (Snakemake, for a job), kept across exec
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _record():
    main = sys.modules.get("__main__")
    job = getattr(main, "snakemake", None)
    row = {
        "pid": os.getpid(),
        "argv": sys.argv[:3],
        "hwm_kib": _hwm_kib(),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }
    if job is not None and hasattr(job, "rule"):
        row["rule"] = job.rule
        row["job"] = "_".join(str(value) for value in job.wildcards)
    with open(os.environ["AEDEPTH_RSS_LOG"], "a") as handle:
        handle.write(json.dumps(row) + "\\n")


def _exit(code, _exit=os._exit):
    # multiprocessing's and joblib's workers end with os._exit, which skips atexit
    try:
        _record()
    finally:
        _exit(code)


if os.environ.get("AEDEPTH_RSS_LOG"):
    atexit.register(_record)
    os._exit = _exit
"""


# --- the data ----------------------------------------------------------------------------------


def images(
    start: int, stop: int, size: int, seed: int, split: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop-1 of a split: each class a colour and a shape (circle, square,
    triangle, cross, ring) at a random place and size, on dark noise; labels 0-9 cycling.
    Seeded per chunk of CHUNK images, so any image is the same whatever else is generated."""
    xs, ys = [], []
    for first in range(start - start % CHUNK, stop, CHUNK):
        rng = np.random.default_rng((seed, split, first // CHUNK))
        n = CHUNK
        labels = np.arange(first, first + n) % 10
        yy, xx = np.mgrid[:size, :size].astype(np.float32)
        cy, cx = (rng.uniform(0.3, 0.7, (2, n, 1, 1)) * size).astype(np.float32)
        r = (rng.uniform(0.18, 0.3, (n, 1, 1)) * size).astype(np.float32)
        dy, dx = yy - cy, xx - cx
        d2 = dy**2 + dx**2
        kind = (labels % 5)[:, None, None]
        mask = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3],
            [
                d2 <= r**2,
                (np.abs(dy) <= 0.8 * r) & (np.abs(dx) <= 0.8 * r),
                (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55),
                ((np.abs(dy) <= r / 3) & (np.abs(dx) <= r))
                | ((np.abs(dx) <= r / 3) & (np.abs(dy) <= r)),
            ],
            (d2 <= r**2) & (d2 >= (0.55 * r) ** 2),
        )
        shade = rng.uniform(0.7, 1.0, (n, 1, 1, 1)).astype(np.float32)
        noise = rng.normal(0, 18, (n, size, size, 3)).astype(np.float32)
        ground = rng.uniform(10, 70, (n, 1, 1, 3)).astype(np.float32)
        x = np.where(mask[..., None], COLOURS[labels][:, None, None, :] * shade, ground) + noise
        lo, hi = max(start, first) - first, min(stop, first + n) - first
        xs.append(np.clip(np.rint(x[lo:hi]), 0, 255).astype(np.uint8))
        ys.append(labels[lo:hi].astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def write_npz(path: Path, train: int, test: int, size: int = 32, seed: int = 0) -> None:
    """The source .npz (x_train, y_train, x_test, y_test, classes), uncompressed like
    numpy.savez, each array streamed into the archive CHUNK images at a time."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for split, (name, n) in enumerate((("train", train), ("test", test))):
            for key, shape, dtype in (
                (f"x_{name}", (n, size, size, 3), np.uint8),
                (f"y_{name}", (n,), np.int64),
            ):
                with archive.open(f"{key}.npy", "w", force_zip64=True) as handle:
                    header = {
                        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                        "fortran_order": False,
                        "shape": shape,
                    }
                    np.lib.format.write_array_header_1_0(handle, header)
                    for start in range(0, n, CHUNK):
                        stop = min(n, start + CHUNK)
                        if key.startswith("x"):
                            handle.write(images(start, stop, size, seed, split)[0].tobytes())
                        else:
                            handle.write((np.arange(start, stop, dtype=np.int64) % 10).tobytes())
        with archive.open("classes.npy", "w") as handle:
            np.lib.format.write_array(handle, np.array(CLASSES), allow_pickle=False)


# --- the readings ------------------------------------------------------------------------------


def read_benchmarks(results: Path) -> list[dict]:
    """One row per Snakemake benchmark file under `results`: rule, job, seconds, max_rss_mb
    (None where Snakemake wrote NA: the job ended before its first sample). The rule is the
    file's folder under benchmarks/ (rule/job.tsv) or its name (rule.tsv, then no job)."""
    rows = []
    for path in sorted(results.rglob("benchmarks/**/*.tsv")):
        parts = path.relative_to(results).parts
        rest = parts[len(parts) - parts[::-1].index("benchmarks") :]  # after the last one
        if len(rest) == 1:
            rule, job = path.stem, ""
        else:
            rule, job = rest[0], Path(*rest[1:]).with_suffix("").as_posix()
        with open(path, newline="") as handle:
            for record in csv.DictReader(handle, delimiter="\t"):
                rss = record.get("max_rss", "NA")
                rows.append(
                    {
                        "rule": rule,
                        "job": job,
                        "seconds": float(record["s"]),
                        "max_rss_mb": None if rss in ("NA", "", None) else float(rss),
                    }
                )
    return rows


def read_probe(log: Path) -> tuple[dict[tuple[str, str], float], list[tuple[float, str]]]:
    """(rule, job) -> exact peak MiB of each job's script process (the largest where a job
    ran several), and (peak MiB, command) of every other Python process of the run, largest
    first (Snakemake itself, and any worker a job started). Each process's own VmHWM (else
    its ru_maxrss): on Linux a process started with vfork, as subprocess starts one, keeps its
    parent's ru_maxrss of that moment across exec, so a job's ru_maxrss is at least
    Snakemake's size, and its children_maxrss that of the job when it ran lscpu, say."""
    jobs: dict[tuple[str, str], float] = {}
    others: list[tuple[float, str]] = []
    if log.exists():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            mib = (row.get("hwm_kib") or row["maxrss_kib"]) / 1024
            if "rule" in row:
                key = (row["rule"], row["job"])
                jobs[key] = max(jobs.get(key, 0.0), mib)
            else:
                others.append((mib, " ".join([Path(row["argv"][0]).name, *row["argv"][1:]])))
    return jobs, sorted(others, reverse=True)


def job_table(benchmarks: list[dict], exact: dict[tuple[str, str], float]) -> list[dict]:
    """The benchmark rows with each job's exact peak, plus the jobs that had no benchmark
    file (max_rss_mb None); in the order rule, job."""
    rows = [row | {"exact_peak_mb": exact.get((row["rule"], row["job"]))} for row in benchmarks]
    seen = {(row["rule"], row["job"]) for row in rows}
    rows += [
        {"rule": rule, "job": job, "seconds": None, "max_rss_mb": None, "exact_peak_mb": mib}
        for (rule, job), mib in exact.items()
        if (rule, job) not in seen
    ]
    return sorted(rows, key=lambda row: (row["rule"], row["job"]))


def largest(rows: list[dict]) -> tuple[float, dict | None]:
    """The largest reading of any job (either column) and its row; (0, None) without any."""
    best, where = 0.0, None
    for row in rows:
        for key in ("max_rss_mb", "exact_peak_mb"):
            if row.get(key) is not None and row[key] > best:
                best, where = row[key], row
    return best, where


def per_rule(rows: list[dict]) -> dict[str, tuple[int, float | None, float | None]]:
    """rule -> (jobs, largest max_rss_mb, largest exact_peak_mb), None where none read."""
    table: dict[str, tuple[int, float | None, float | None]] = {}
    for row in rows:
        jobs, rss, exact = table.get(row["rule"], (0, None, None))
        table[row["rule"]] = (
            jobs + 1,
            max((v for v in (rss, row["max_rss_mb"]) if v is not None), default=None),
            max((v for v in (exact, row["exact_peak_mb"]) if v is not None), default=None),
        )
    return table


# --- the run -----------------------------------------------------------------------------------


def own_peak_mib() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss where /proc is missing), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_workflow(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif source.exists():
            shutil.copy2(source, destination / name)
    return destination


def fmt(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000, help="training images")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32, help="images are size x size x 3")
    parser.add_argument("--seed", type=int, default=0, help="of the generated images")
    parser.add_argument("--cores", type=int, default=2, help="as snakemake --cores")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--architectures", nargs="+", default=["mlp", "conv"])
    parser.add_argument("--baselines", nargs="*", default=[], help="e.g. pca; none by default")
    parser.add_argument("--until", nargs="+", metavar="RULE", help="as snakemake --until")
    parser.add_argument("--limit-mb", type=float, default=1536, help="MiB per job (1.5 GB)")
    parser.add_argument("--workdir", help="where the data and the workflow's copy go (kept)")
    parser.add_argument("--csv", default="benchmarks/data_memory.csv", help="the job table")
    args = parser.parse_args()

    name = "cifar-size" if (args.images, args.size) == (50_000, 32) else f"generated-{args.images}"
    config = [
        f"dataset={name}",
        "epochs=" + str(args.epochs),
        "seeds=[0]",
        "depths=[" + ",".join(map(str, args.depths)) + "]",
        "architectures=[" + ",".join(args.architectures) + "]",
        "baselines=[" + ",".join(args.baselines) + "]",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        study = root / "study"
        if (study / "results").exists():
            sys.exit(f"{study / 'results'} exists: remove it, or pick another --workdir")
        root.mkdir(parents=True, exist_ok=True)
        source = root / f"{name}.npz"
        started = time.perf_counter()
        write_npz(source, args.images, args.test_images, args.size, args.seed)
        generated = time.perf_counter() - started
        generator_mib = own_peak_mib()
        copy_workflow(study)
        probe = root / "rss_probe"
        probe.mkdir(exist_ok=True)
        (probe / "sitecustomize.py").write_text(PROBE)
        log = root / "rss.jsonl"
        log.unlink(missing_ok=True)
        command = [
            str(Path(sys.executable).parent / "snakemake"),
            "--cores",
            str(args.cores),
            "--config",
            f"source={source}",
            *config,
        ]
        if args.until:
            command += ["--until", *args.until]
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(probe), os.environ.get("PYTHONPATH")])),
            "AEDEPTH_RSS_LOG": str(log),
        }

        print(
            f"# {cpu_model()}, {os.cpu_count()} CPU(s), --cores {args.cores}; "
            f"torch {importlib.metadata.version('torch')}, "
            f"snakemake {importlib.metadata.version('snakemake')}, Python {platform.python_version()}"
        )
        print(
            f"# data: generated {args.images:,} + {args.test_images:,} RGB {args.size}x{args.size} "
            f"uint8 images, 10 classes, seed {args.seed}: {source.stat().st_size / 2**20:,.0f} MiB "
            f".npz in {generated:.1f} s (generator's peak RSS {generator_mib:.0f} MiB)"
        )
        print(
            f"# snakemake --cores {args.cores} --config source=<that .npz> {' '.join(config)}"
            + (f" --until {' '.join(args.until)}" if args.until else ""),
            flush=True,
        )
        started = time.perf_counter()
        with open(root / "snakemake.log", "w") as output:
            run = subprocess.run(
                command, cwd=study, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        wall = time.perf_counter() - started
        tree_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if run.returncode != 0:
            tail = (root / "snakemake.log").read_text().splitlines()[-40:]
            print("\n".join(tail), file=sys.stderr)
            where = root if args.workdir else "(a temporary folder; pass --workdir to keep it)"
            sys.exit(f"snakemake failed ({run.returncode}) after {wall:.0f} s; log in {where}")

        exact, others = read_probe(log)
        rows = job_table(read_benchmarks(study / "results"), exact)
        peak, where = largest(rows)
        print(f"# {len(rows)} jobs; MiB = 2^20 bytes; max_rss: as Snakemake sampled it (the job's")
        print("# process tree); exact peak: the job's script process, from the kernel, at exit")
        print("| rule | job | seconds | max_rss MiB | exact peak MiB |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['rule']} | {row['job']} | {fmt(row['seconds'], 1)} | "
                f"{fmt(row['max_rss_mb'])} | {fmt(row['exact_peak_mb'])} |"
            )
        print("# per rule, the largest of its jobs:")
        print("| rule | jobs | max_rss MiB | exact peak MiB |")
        print("|---|---|---|---|")
        for rule, (jobs, rss, exact_mib) in per_rule(rows).items():
            print(f"| {rule} | {jobs} | {fmt(rss)} | {fmt(exact_mib)} |")
        for mib, what in others[:5]:
            print(f"# not a job's script: {what}: {mib:,.0f} MiB")
        print(
            f"# the largest process of the run, its whole life (jobs' interpreter shut-down and "
            f"Snakemake included): {tree_mib:,.0f} MiB"
        )
        minutes, seconds = divmod(round(wall), 60)
        print(f"# wall {wall:.0f} s ({minutes} min {seconds} s)")
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
        print(f"# written to {args.csv}")
        if where is None:
            sys.exit("FAIL: no job's memory was read")
        job = where["rule"] + (f" ({where['job']})" if where["job"] else "")
        passed = max(peak, tree_mib) <= args.limit_mb
        print(
            f"{'PASS' if passed else 'FAIL'}: the largest job, {job}, peaked at {peak:,.0f} MiB, "
            f"the largest process at {tree_mib:,.0f} MiB; limit {args.limit_mb:,.0f} MiB"
        )
        if not passed:
            sys.exit(1)


if __name__ == "__main__":
    main()
