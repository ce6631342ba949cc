"""Snakemake adapter: fit one baseline on the train images; write its latents and metrics."""

from aedepth.baselines import embed_baseline
from aedepth.data import load_dataset
from aedepth.files import write_json
from aedepth.jobs import job_log
from aedepth.latents import latent_table, write_latents
from aedepth.metrics import score_embedding, unit_pixels

with job_log(snakemake.log[0]):
    hparams = snakemake.params.hparams
    data = load_dataset(snakemake.input.data)
    x_test = unit_pixels(data["x_test"])
    z_train, z_test, x_hat = embed_baseline(
        hparams["method"],
        unit_pixels(data["x_train"]),
        x_test,
        hparams["latent_dim"],
        hparams.get("seed", 0),
    )
    splits = {"train": (z_train, data["y_train"]), "test": (z_test, data["y_test"])}
    metadata = snakemake.params.record | {
        "dataset": snakemake.params.dataset,
        "source": snakemake.params.source,
    }
    write_latents(snakemake.output.latents, latent_table(splits, metadata))
    scores, _ = score_embedding(
        *splits["train"], *splits["test"], x_test, x_hat, **snakemake.params.metrics
    )
    write_json(snakemake.output.metrics, snakemake.params.record | {"n_test": len(x_test)} | scores)
