"""Snakemake adapter: the latent explorer page of the study (every model and baseline)."""

from pathlib import Path

from aedepth.data import image_shape, load_dataset
from aedepth.explorer import explorer_page, run_view, stratified_subsample, write_page
from aedepth.files import read_json, reading
from aedepth.grid import AUTOENCODER
from aedepth.jobs import job_log
from aedepth.latents import read_latents
from aedepth.markup import param_value
from aedepth.model import load_model, reconstruct_images

with job_log(snakemake.log[0]):
    data = load_dataset(snakemake.input.data)
    subsample = stratified_subsample(data["y_test"], snakemake.params.points)
    images = data["x_test"][subsample]
    models = iter(zip(snakemake.input.weights, snakemake.input.hparams))  # grid order
    views = []
    for record, latents in zip(snakemake.params.records, snakemake.input.latents):
        reconstructions = None
        if record["method"] == AUTOENCODER:
            weights, hparams = next(models)
            reconstructions = reconstruct_images(load_model(weights, read_json(hparams)), images)
        with reading(latents, "the latents Parquet aedepth wrote"):
            splits, _ = read_latents(latents)
        views.append(
            run_view(
                record,
                snakemake.params.labels,
                snakemake.params.omit,
                splits["test"][0],
                subsample,
                reconstructions,
            )
        )
    page = explorer_page(
        views,
        subsample,
        images / 255.0,
        data["y_test"],
        param_value(snakemake.params.classes),
        snakemake.params.labels,
        title=f"Latent explorer: {snakemake.params.dataset}",
        shape=image_shape(data["x_test"]),
        about={
            "study": Path(snakemake.output[0]).parent.name,
            "dataset": snakemake.params.dataset,
            "source": snakemake.config["source"],  # not a param: the report shows no config
        },
    )
    write_page(snakemake.output[0], page)
