"""Snakemake adapter: train one autoencoder and write weights, hyperparameters and history."""

import logging
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
    # the config's training_threads, whatever --cores or the machine: on some CPUs the thread
    # count changes the bits, so it is a declared setting, not a scheduling fact
    torch.set_num_threads(snakemake.params.threads)
    log = logging.getLogger("aedepth")
    log.info(
        "training %s on %s%s, %d thread(s)",
        hparams,
        device,
        f" (GPU {gpu} of the host)" if gpu is not None and device.type == "cuda" else "",
        snakemake.params.threads,
    )
    if device.type == "cpu" and snakemake.params.threads > usable_cpus():
        log.info(
            "training_threads %d is more than the %d CPU(s) this job may use: it runs slower",
            snakemake.params.threads,
            usable_cpus(),
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
            matmul_route=snakemake.params.matmul_route,
        )
    state = model.state_dict()
    # the size it needs, for the line a full disk gives
    with atomic_output(snakemake.output.weights, sum(t.nbytes for t in state.values())) as tmp:
        torch.save(state, tmp)
    # how: {"hardware_class", "threads", "training_path", "matmul_route", "subnormals_flushed"}
    write_json(snakemake.output.hparams, hparams | {"device": str(device)} | how)
    # NaN (no validation split): blank
    write_csv(snakemake.output.history, history, HISTORY_COLUMNS)
    # The finished outputs supersede the checkpoint; a stale one must not be resumed later.
    Path(checkpoint).unlink()
