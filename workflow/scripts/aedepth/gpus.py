"""Which local GPU a training job uses, so that a workstation with N GPUs uses all N.

Snakemake counts a `gpu` resource but does not say *which* GPU a job gets. Each training job
that trains on CUDA takes the lowest free slot (an exclusive file lock under
`.snakemake/aedepth-gpu-slots/`, released when the job ends, even when it is killed); slot k
is GPU k mod N of the GPUs this process may see, so the first N jobs get N different GPUs
and further ones share them round robin (`--resources gpu=K` caps how many run at once).
The job then sees only its GPU (CUDA_VISIBLE_DEVICES). Under Slurm, which sets
CUDA_VISIBLE_DEVICES to the job's own GPUs, the slots are taken among those.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SLOT_DIR = Path(".snakemake/aedepth-gpu-slots")
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees


def visible_gpus(
    environ: Mapping[str, str] = os.environ, driver_gpus: Path = NVIDIA_GPUS
) -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES where set (by Slurm, or the
    user), else 0..N-1 for the N GPUs the NVIDIA driver lists; [] without any."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [gpu.strip() for gpu in environ["CUDA_VISIBLE_DEVICES"].split(",") if gpu.strip()]
    try:
        return [str(i) for i in range(len(list(driver_gpus.iterdir())))]
    except OSError:
        return []


@contextmanager
def gpu_slot(gpus: list[str], slot_dir: Path = SLOT_DIR) -> Iterator[str]:
    """Hold the lowest free slot within the block; yields its GPU id (from `gpus`)."""
    if not gpus:
        raise ValueError("no GPU to assign")
    slot_dir.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        handle = open(slot_dir / f"slot{slot}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            slot += 1
            continue
        break
    try:
        yield gpus[slot % len(gpus)]
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextmanager
def one_gpu_per_job(
    requested: str, environ: dict = os.environ, slot_dir: Path = SLOT_DIR
) -> Iterator[str | None]:
    """For a job training on `requested` ("auto", "cuda" or "cpu"): within the block,
    CUDA_VISIBLE_DEVICES names the one GPU of its slot; yields that id, or None where it
    trains on the CPU or sees no GPU (nothing is changed then)."""
    gpus = visible_gpus(environ)
    if requested == "cpu" or not gpus:
        yield None
        return
    with gpu_slot(gpus, slot_dir) as gpu:
        previous = environ.get("CUDA_VISIBLE_DEVICES")
        environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch first touches CUDA
        try:
            yield gpu
        finally:
            if previous is None:
                environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                environ["CUDA_VISIBLE_DEVICES"] = previous
