"""Snakemake adapter: train one autoencoder and write weights, hyperparameters and history."""

import logging
import os
from pathlib import Path

import torch
from tqdm import tqdm

from aedepth.cpus import usable_cpus
from aedepth.data import load_dataset
from aedepth.files import atomic_output, exclusive, write_csv, write_json
from aedepth.gpus import one_gpu_per_job
from aedepth.jobs import job_log
from aedepth.train import HISTORY_COLUMNS, select_device, train

with job_log(snakemake.log[0]), one_gpu_per_job(snakemake.params.device) as gpu:
    hparams = snakemake.params.hparams
    device = select_device(snakemake.params.device)
    # the workflow's share of the CPUs for this job, never more than the job may use
    threads = max(1, min(snakemake.params.compute_threads, usable_cpus()))
    torch.set_num_threads(threads)
    logging.getLogger("aedepth").info(
        "training %s on %s%s, %d thread(s)",
        hparams,
        device,
        f" (GPU {gpu} of the host)" if gpu is not None and device.type == "cuda" else "",
        threads,
    )
    data = load_dataset(snakemake.input.data)
    checkpoint = snakemake.output.weights + ".checkpoint"
    with exclusive(checkpoint):
        model, history, how = train(
            hparams,
            data["x_train"],
            data["y_train"],
            data["x_test"],
            checkpoint,
            device,
            progress=lambda epochs: tqdm(epochs, desc="epochs", mininterval=5),
            # the measured choice of path and route, per CPU model, threads and shapes: every
            # run on this machine trains the same way (delete the file to measure anew)
            choice_cache=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            / "aedepth"
            / "speed-choices.json",
            # up to the cores the job reserved, where other jobs leave them free
            max_threads=snakemake.threads,
        )
    with atomic_output(snakemake.output.weights) as tmp:
        torch.save(model.state_dict(), tmp)
    # how: {"training_path": "written-out backward" or "autograd", "matmul_route": ...,
    # "subnormals_flushed": bool, "mkl_cbwr": MKL's reproducibility mode,
    # "probe_ms_per_step": {candidate: ms}} (the measured choice; see aedepth.speed)
    write_json(
        snakemake.output.hparams,
        hparams | {"device": str(device), "threads": threads} | how,
    )
    # NaN (no validation split): blank
    write_csv(snakemake.output.history, history, HISTORY_COLUMNS)
    # The finished outputs supersede the checkpoint; a stale one must not be resumed later.
    Path(checkpoint).unlink()
