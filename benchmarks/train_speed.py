"""How fast does aedepth train, against a tutorial loop and the machine's fp32 matmul peak?

Run from the repository root (one command, about 2 minutes on a 2-core laptop):

    .venv/bin/python benchmarks/train_speed.py

For each depth it trains our loop (aedepth.train.train: data resident, shuffled by one
permutation per epoch, fp32 matmuls on the fastest route proven exact, fused Adam, and the
backward pass written out by aedepth.speed, as the workflow selects it) and the
loop of most MNIST tutorials (torchvision dataset, per-item ToTensor, DataLoader, plain Adam)
on the same data, threads and batch size, and measures the fp32 matmul peak of the machine in
the same run. Prints a table and writes it as CSV (--csv).

GFLOP per epoch is counted as 6 x parameters x training images (forward 2, backward 4),
the usual convention. The two loops' epochs alternate, so both see the machine in the same
state, and each loop's best of --epochs epochs counts: other processes on the machine (or
its neighbours on a shared host) only ever make an epoch slower.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from aedepth.cpus import busy_cpu_seconds, cpu_model
from aedepth.data import DataError, arrays_from_idx, load_dataset, read_idx_folder
from aedepth.efficiency import fp32_peak
from aedepth.grid import MNIST_PIXELS
from aedepth.model import Autoencoder
from aedepth.train import flush_subnormals, train

REPO = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ("/usr/share/datasets/fashion-mnist", "results/data/mnist/dataset.npz")
COLUMNS = (
    "loop",
    "depth",
    "params",
    "threads",
    "batch_size",
    "epoch_s",
    "images_per_s",
    "gflop_per_s",
    "pct_of_peak",
    "speedup_vs_tutorial",
    "other_cpu_pct",
)


def load_data(source: str | None) -> tuple[dict[str, np.ndarray], str]:
    """Arrays x_train/y_train/x_test/y_test and a description of where they came from."""
    candidates = (
        [source]
        if source
        else [str(REPO / p) if not Path(p).is_absolute() else p for p in DEFAULT_DATA]
    )
    for candidate in candidates:
        path = Path(candidate)
        if path.is_dir():
            datasets = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]
            for name, dataset in datasets.items():
                md5s = dataset["checksums"]
                try:
                    return arrays_from_idx(read_idx_folder(path, md5s)), f"{name} from {path}"
                except DataError:
                    continue
            sys.exit(f"{path}: no verified MNIST or Fashion-MNIST IDX files there")
        if path.is_file():
            return load_dataset(path), f"{path}"
        if source:
            sys.exit(f"{path}: neither a folder of IDX files nor a dataset .npz")
    sys.exit(
        "no data found: pass --data FOLDER (the four MNIST or Fashion-MNIST IDX files), "
        "e.g. after `apt-get install dataset-fashion-mnist`, or a workflow results/data/<data>/dataset.npz"
    )


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) in the IDX format torchvision's MNIST reads."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


class OtherLoad:
    """Share of all CPUs that other processes used between start() and stop(): an epoch
    measured while the machine was busy with something else is slower than the loop."""

    def _sample(self) -> tuple[float | None, float, float]:
        # Our own work includes the jobs we waited for (study_speed.py's training processes).
        own = os.times()
        mine = own.user + own.system + own.children_user + own.children_system
        return busy_cpu_seconds(range(os.cpu_count() or 1)), time.monotonic(), mine

    def start(self) -> None:
        self.begin = self._sample()

    def stop(self) -> float:
        (busy0, t0, own0), (busy1, t1, own1) = self.begin, self._sample()
        if busy0 is None or busy1 is None or t1 <= t0:
            return float("nan")
        others = (busy1 - busy0) - (own1 - own0)
        return max(0.0, 100 * others / ((t1 - t0) * (os.cpu_count() or 1)))


@contextlib.contextmanager
def torch_default_matmuls():
    """Torch's default fp32 matmul route within the block, also where it runs between epochs
    of ours (inside aedepth.speed.fp32_matmuls)."""
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "none"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


class TutorialLoop:
    """The loop MNIST tutorials teach: torchvision's MNIST dataset with a per-item ToTensor(),
    DataLoaders, torch.optim.Adam and torch's default matmul route. Like PyTorch's MNIST
    example, an epoch is a training pass plus the loss on the test set (batch 1000): the same
    work as an epoch of ours."""

    def __init__(self, idx_root: Path, hparams: dict):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        def loader(train: bool, batch_size: int) -> DataLoader:
            dataset = datasets.MNIST(
                idx_root, train=train, download=False, transform=transforms.ToTensor()
            )
            return DataLoader(dataset, batch_size=batch_size, shuffle=train)

        self.train_loader = loader(True, hparams["batch_size"])
        self.test_loader = loader(False, 1000)
        torch.manual_seed(hparams["seed"])
        self.model = Autoencoder(hparams["widths"], hparams["latent_dim"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=hparams["learning_rate"])

    def epoch(self) -> float:
        """Train one epoch, compute the test loss; the seconds it took."""
        with torch_default_matmuls():
            return self._epoch()

    def _epoch(self) -> float:
        started = time.perf_counter()
        self.model.train()
        for images, _ in self.train_loader:
            x = images.view(images.size(0), -1)
            loss = F.binary_cross_entropy_with_logits(self.model(x), x)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        test_loss = 0.0  # what tutorials print each epoch; computing it is the timed work
        with torch.no_grad():
            for images, _ in self.test_loader:
                x = images.view(images.size(0), -1)
                out = self.model(x)
                test_loss += F.binary_cross_entropy_with_logits(out, x, reduction="sum").item()
        return time.perf_counter() - started


def matmul_floor(
    widths: list[int], latent_dim: int, batch_size: int, images: int, route: str
) -> float:
    """Seconds per epoch of the training step's matmuls alone: every layer's forward product
    and its weight and input gradients (none into the first layer), at the run's shapes, on
    `route`, as aedepth.speed's written-out step calls them. No loop doing the same products
    can take less; what our epoch takes beyond it is the rest of the step (activations, the
    loss, Adam) and the test-loss pass."""
    from aedepth.speed import layer_precision, matmul_route

    sizes = [MNIST_PIXELS, *widths, latent_dim, *reversed(widths), MNIST_PIXELS]
    layers = list(zip(sizes, sizes[1:]))
    x = {n: torch.rand(batch_size, n) for n in set(sizes)}
    weights = [torch.rand(n_out, n_in) - 0.5 for n_in, n_out in layers]
    grads = [torch.empty(n_out, n_in) for n_in, n_out in layers]
    biases = [torch.rand(n_out) for _, n_out in layers]
    matmul = torch.backends.mkldnn.matmul

    def step():
        for i, ((n_in, n_out), weight) in enumerate(zip(layers, weights)):
            matmul.fp32_precision = precisions[i]
            torch.addmm(biases[i], x[n_in], weight.t())
            torch.mm(x[n_out].t(), x[n_in], out=grads[i])
            if i > 0:
                x[n_out].mm(weight)

    with matmul_route(route):  # restores the precision step() changes per layer
        precisions = [
            layer_precision(matmul.fp32_precision, n_in * n_out) for n_in, n_out in layers
        ]
        for _ in range(20):
            step()
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(50):
                step()
            best = min(best, (time.perf_counter() - started) / 50)
    return best * images / batch_size


def best_epochs(
    arrays, hparams, device, idx_root: Path
) -> tuple[dict[str, tuple[float, float]], str]:
    """For our loop (aedepth.train.train as the workflow runs it: training pass, test loss,
    checkpoint) and the tutorial loop: the best epoch's seconds and the share of all
    CPUs that other processes used during it; and the fp32 matmul route our loop took. The
    two loops' epochs alternate (ours, tutorial, ours, ...), so both are measured on the
    machine in the same state."""
    tutorial = TutorialLoop(idx_root, hparams)
    load = OtherLoad()
    ours_others, tutorial_epochs = [], []

    def progress(epoch_numbers):
        for epoch in epoch_numbers:
            load.start()
            yield epoch  # train() runs our epoch here
            ours_others.append(load.stop())
            load.start()
            tutorial_epochs.append((tutorial.epoch(), load.stop()))

    with tempfile.TemporaryDirectory() as tmp:
        _, history, how = train(
            hparams,
            arrays["x_train"],
            arrays["y_train"],
            arrays["x_test"],
            Path(tmp) / "checkpoint.pt",
            device,
            progress=progress,
        )
    ours = [(row["seconds"], others) for row, others in zip(history, ours_others)]
    return {"aedepth": min(ours), "tutorial": min(tutorial_epochs)}, how["matmul_route"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder of MNIST/Fashion-MNIST IDX files, or a dataset .npz")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[500, 300, 100])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs of each loop per depth (the best counts)"
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (our loop; the tutorial loop runs on the CPU)"
    )
    parser.add_argument("--csv", default="benchmarks/results.csv", help="where to write the table")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # before any torch computation starts the compute threads, so that they inherit the mode
    # our loop trains in (aedepth.train.flush_subnormals); the tutorial loop runs in it too
    flush_subnormals()
    device = torch.device(args.device)
    arrays, data_name = load_data(args.data)
    n_train = len(arrays["x_train"])

    peaks = fp32_peak(args.threads, repeats=10)  # per fp32 route proven exact here
    peak_default = peaks["default"]
    route, peak = max(peaks.items(), key=lambda item: item[1])
    print(
        f"# {cpu_model()}, {args.threads} thread(s), torch {torch.__version__}, {platform.system()}"
    )
    print(f"# data: {data_name}, {n_train} training images; batch {args.batch_size}; fp32")
    print(
        "# fp32 matmul 2048^3: "
        + ", ".join(f"{name} {gflops:.0f} GFLOP/s" for name, gflops in peaks.items())
        + f"; peak = {peak:.0f} GFLOP/s ({route})"
    )

    rows = [
        {
            "loop": "matmul peak (fp32, 2048^3)",
            "gflop_per_s": peak,
            "pct_of_peak": 100.0,
            "threads": args.threads,
        },
        {
            "loop": "matmul torch default (fp32)",
            "gflop_per_s": peak_default,
            "pct_of_peak": 100 * peak_default / peak,
            "threads": args.threads,
        },
    ]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        write_idx(raw / "train-images-idx3-ubyte", arrays["x_train"])
        write_idx(raw / "train-labels-idx1-ubyte", arrays["y_train"])
        write_idx(raw / "t10k-images-idx3-ubyte", arrays["x_test"])
        write_idx(raw / "t10k-labels-idx1-ubyte", arrays["y_test"])
        for depth in args.depths:
            hparams = {
                "depth": depth,
                "widths": args.hidden_sizes[:depth],
                "latent_dim": 2,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": 1e-3,
                "seed": 0,
            }
            params = sum(p.numel() for p in Autoencoder(hparams["widths"], 2).parameters())
            gflop = 6 * params * n_train / 1e9
            best, our_route = best_epochs(arrays, hparams, device, Path(tmp))
            if device.type == "cpu":
                floor = matmul_floor(hparams["widths"], 2, args.batch_size, n_train, our_route)
                best["matmuls alone"] = (floor, None)  # not an epoch: no load measured
            tutorial = best["tutorial"][0]
            for loop, (seconds, others) in best.items():
                rows.append(
                    {
                        "loop": loop,
                        "depth": depth,
                        "params": params,
                        "threads": args.threads,
                        "batch_size": args.batch_size,
                        "epoch_s": seconds,
                        "images_per_s": n_train / seconds,
                        "gflop_per_s": gflop / seconds,
                        "pct_of_peak": 100 * gflop / seconds / peak,
                        "speedup_vs_tutorial": tutorial / seconds,
                    }
                    | ({"other_cpu_pct": others} if others is not None else {})
                )

    print_table(rows)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
    print(f"# written to {args.csv}")


def print_table(rows: list[dict]) -> None:
    formats = {
        "epoch_s": "{:.2f}",
        "images_per_s": "{:,.0f}",
        "gflop_per_s": "{:.0f}",
        "pct_of_peak": "{:.0f}%",
        "speedup_vs_tutorial": "{:.2f}x",
        "params": "{:,}",
        "other_cpu_pct": "{:.0f}%",
    }
    shown = COLUMNS[:2] + COLUMNS[2:3] + COLUMNS[5:]
    cells = [
        [formats.get(c, "{}").format(row[c]) if c in row else "" for c in shown] for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(shown)]

    def line(values):
        padded = (
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))
        )
        return "| " + " | ".join(padded) + " |"

    print(line(shown))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print(line(row))


if __name__ == "__main__":
    main()
