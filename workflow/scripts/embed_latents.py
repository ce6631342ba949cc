"""Snakemake adapter: encode train and test images and write the latent Parquet file."""

from aedepth.data import load_dataset
from aedepth.files import read_json
from aedepth.jobs import job_log
from aedepth.latents import latent_table, write_latents
from aedepth.model import encode_images, load_model

with job_log(snakemake.log[0]):
    hparams = read_json(snakemake.input.hparams, ("widths", "latent_dim"))
    model = load_model(snakemake.input.weights, hparams)
    data = load_dataset(snakemake.input.data)
    splits = {
        split: (encode_images(model, data[f"x_{split}"]), data[f"y_{split}"])
        for split in ("train", "test")
    }
    metadata = snakemake.params.record | {
        "widths": hparams["widths"],
        "dataset": snakemake.params.dataset,
        "source": snakemake.params.source,
    }
    write_latents(snakemake.output[0], latent_table(splits, metadata))
