"""How fast is the default study's training, as the workflow schedules it, against the FLOP
limit of this machine?

Run from the repository root (about 2-3 minutes on a 2-CPU laptop with the defaults):

    .venv/bin/python benchmarks/study_speed.py --cores 4 --epochs 2

It trains every model of the default study (depths 1-3 x 3 seeds: 784-500[-300[-100]]-2,
mirrored; batch 128) for --epochs epochs each, in separate processes started as Snakemake
starts them under `--cores`: each computes with --training-threads threads (the config's
training_threads) and reserves cores as the workflow does (aedepth.cpus.training_reservation:
no more side by side than fit on the usable CPUs), the longest first (aedepth.cpus.training_priority), a new one starts when one ends,
and each job is aedepth.train.train as the workflow runs it (imports, data, the route of
--matmul-route, epochs, checkpoints). In the same run it measures the machine's fp32 peak (a 2048^3
matmul on all usable CPUs, the faster exact route), before and after the jobs; the higher
counts. It reports the achieved GFLOP/s (6 x parameters x images x epochs over the wall
time of all jobs) as % of the peak, the projected time of the default study's training
(50 epochs), its ratio to the FLOP limit (training FLOPs / peak) and that limit as % of the
projection (the share of the peak the default study's training would reach). Writes a CSV
(--csv), one row per job in the order they started.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aedepth.cpus import cpu_model, training_priority, training_reservation, usable_cpus
from aedepth.efficiency import fp32_peak, training_flop

REPO = Path(__file__).resolve().parents[1]
STUDY_EPOCHS = 50  # the default study's epochs, for the projection
COLUMNS = ("run", "threads", "seconds", "epoch_s", "gflop", "training_path", "matmul_route")


def mlp_flop(widths: list[int], images: int, epochs: int) -> float:
    """Training FLOPs of the MLP with these widths and a 2-D code (aedepth.efficiency)."""
    return training_flop({"widths": widths, "latent_dim": 2}, images, epochs)


def job(spec_path: str) -> None:
    """One training job (a separate process, as Snakemake runs it): train and write the
    result next to the spec."""
    started = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    import torch

    from train_speed import load_data

    from aedepth.train import train

    torch.set_num_threads(spec["threads"])
    arrays, _ = load_data(spec["data"])
    _, history, how = train(
        spec["hparams"],
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        Path(spec_path).with_suffix(".checkpoint"),
        torch.device("cpu"),
        matmul_route=spec["matmul_route"],
    )
    result = {
        "epochs": [row["seconds"] for row in history],
        "seconds": time.perf_counter() - started,
        "images": len(arrays["x_train"]),
    } | how
    Path(spec_path).with_suffix(".result.json").write_text(json.dumps(result))


def run_jobs(specs: list[Path], side_by_side: int) -> float:
    """Start the jobs, at most `side_by_side` at once, a new one as one ends; wall seconds."""
    waiting, running = list(specs), []
    started = time.perf_counter()
    while waiting or running:
        while waiting and len(running) < side_by_side:
            spec = waiting.pop(0)
            running.append(
                subprocess.Popen([sys.executable, __file__, "--job", str(spec)], env=os.environ)
            )
        time.sleep(0.05)
        for process in [p for p in running if p.poll() is not None]:
            if process.returncode != 0:
                sys.exit(f"a training job failed ({process.args[-1]})")
            running.remove(process)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=usable_cpus(), help="as snakemake --cores")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per model in this run")
    parser.add_argument("--data", help="folder of MNIST/Fashion-MNIST IDX files, or a dataset .npz")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[500, 300, 100])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--training-threads", type=int, default=1, help="as config's")
    parser.add_argument("--matmul-route", default="auto", choices=["auto", "default", "onednn"])
    parser.add_argument("--csv", default="benchmarks/study.csv", help="where to write the table")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(args.job)

    from train_speed import DEFAULT_DATA, OtherLoad, load_data

    cpus = usable_cpus()
    models = [(d, s) for d in args.depths for s in range(args.seeds)]
    threads = args.training_threads
    reserve = training_reservation(args.cores, cpus, threads)
    side_by_side = max(1, min(len(models), args.cores // reserve))
    arrays, data_name = load_data(args.data)
    data = args.data or next(
        str(path)
        for path in (Path(p) if Path(p).is_absolute() else REPO / p for p in DEFAULT_DATA)
        if path.exists()
    )
    images = len(arrays["x_train"])
    del arrays

    peak_before = max(fp32_peak(cpus).values())
    load = OtherLoad()
    with tempfile.TemporaryDirectory() as tmp:
        specs, priority = [], {}
        for depth, seed in models:
            hparams = {
                "depth": depth,
                "widths": args.hidden_sizes[:depth],
                "latent_dim": 2,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": 1e-3,
                "seed": seed,
            }
            spec = Path(tmp) / f"depth{depth}_dim2_seed{seed}.json"
            spec.write_text(
                json.dumps(
                    {
                        "hparams": hparams,
                        "threads": threads,
                        "matmul_route": args.matmul_route,
                        "data": data,
                    }
                )
            )
            specs.append(spec)
            priority[spec] = training_priority(hparams | {"epochs": STUDY_EPOCHS})
        # longest first, as the workflow's priorities start them (aedepth.cpus.training_priority)
        specs.sort(key=lambda spec: -priority[spec])
        load.start()
        wall = run_jobs(specs, side_by_side)
        others = load.stop()
        results = {s.stem: json.loads(s.with_suffix(".result.json").read_text()) for s in specs}
    peak_after = max(fp32_peak(cpus).values())
    peak = max(peak_before, peak_after)

    flop = sum(mlp_flop(args.hidden_sizes[:d], images, args.epochs) for d, _ in models)
    study_flop = flop * STUDY_EPOCHS / args.epochs
    achieved = flop / wall / 1e9
    limit = study_flop / (peak * 1e9)
    # the projection: each job's start-up once, its mean epoch 50 times, scheduled as above
    startup = sum(r["seconds"] - sum(r["epochs"]) for r in results.values()) / len(results)
    projected = (
        wall
        + (STUDY_EPOCHS - args.epochs)
        * sum(sum(r["epochs"]) / len(r["epochs"]) for r in results.values())
        / side_by_side
    )

    print(f"# {cpu_model()}, {cpus} usable CPU(s), --cores {args.cores}; data: {data_name}")
    print(
        f"# schedule: {len(models)} training jobs, {side_by_side} side by side, "
        f"{threads} thread(s) each (each reserves {reserve} of --cores)"
    )
    print(
        f"# fp32 peak (2048^3 matmul, {cpus} threads): {peak_before:.0f} GFLOP/s before, "
        f"{peak_after:.0f} after; peak = {peak:.0f} GFLOP/s"
    )
    rows = []
    for name, r in results.items():
        depth = int(name.split("_")[0].removeprefix("depth"))
        gflop = mlp_flop(args.hidden_sizes[:depth], images, args.epochs) / 1e9
        rows.append(
            {
                "run": name,
                "threads": threads,
                "seconds": r["seconds"],
                "epoch_s": min(r["epochs"]),
                "gflop": gflop,
                "training_path": r["training_path"],
                "matmul_route": r["matmul_route"],
            }
        )
        print(
            f"  {name}: {r['seconds']:.1f} s, best epoch {min(r['epochs']):.2f} s, "
            f"{r['training_path']} on {r['matmul_route']}"
        )
    summary = {
        "epochs per model": args.epochs,
        "wall s (all jobs)": f"{wall:.1f}",
        "achieved GFLOP/s": f"{achieved:.0f}",
        "% of fp32 peak": f"{100 * achieved / peak:.0f} %",
        "mean job start-up s": f"{startup:.1f}",
        "projected default-study training s (50 epochs)": f"{projected:.0f}",
        "training-FLOP limit s (50 epochs at peak)": f"{limit:.0f}",
        "projected / limit": f"{projected / limit:.2f} x",
        "projected % of fp32 peak (50 epochs)": f"{100 * limit / projected:.0f} %",
        "other processes' CPU share": f"{others:.0f} %",
    }
    for key, value in summary.items():
        print(f"{key:>48}: {value}")
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in row.items()})
    print(f"# written to {args.csv}")


if __name__ == "__main__":
    main()
