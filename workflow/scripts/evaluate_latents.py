"""Snakemake adapter: score one model's latent space and reconstructions on the test split."""

from aedepth.data import load_dataset
from aedepth.files import read_json, read_table, reading, write_json
from aedepth.jobs import job_log
from aedepth.latents import read_latents, write_per_image
from aedepth.metrics import score_embedding, unit_pixels
from aedepth.model import load_model, reconstruct_images
from aedepth.summary import budget_columns, convergence, kept_losses, size_columns

# The columns of history.csv that kept_losses and convergence read.
HISTORY = ("epoch", "train_loss", "val_loss", "test_loss", "kept")

with job_log(snakemake.log[0]):
    # only the test images: the rest is freed at once (x_train would be 147 MB of a peak
    # of 1.4 GB on CIFAR-10-sized data; benchmarks/data_memory.py)
    images = load_dataset(snakemake.input.data)["x_test"]
    with reading(snakemake.input.latents, "the latents Parquet aedepth wrote"):
        splits, _ = read_latents(snakemake.input.latents)
    hparams = read_json(snakemake.input.hparams, ("widths", "latent_dim", "params"))
    model = load_model(snakemake.input.weights, hparams)
    x_test = unit_pixels(images)
    scores, per_image = score_embedding(
        *splits["train"],
        *splits["test"],
        x_test,
        reconstruct_images(model, images),
        **snakemake.params.metrics,
    )
    history = read_table(snakemake.input.history, HISTORY, HISTORY)
    write_per_image(snakemake.output.per_image, per_image)
    write_json(
        snakemake.output.metrics,
        snakemake.params.record
        | {"n_test": len(x_test)}
        | size_columns(hparams)
        | budget_columns(hparams)
        | scores
        | kept_losses(history)
        | convergence(history),
    )
