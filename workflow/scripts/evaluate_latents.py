"""Snakemake adapter: score one model's latent space and reconstructions on the test split."""

import pandas as pd

from aedepth.config import model_id
from aedepth.data import load_dataset
from aedepth.files import read_json, write_json
from aedepth.jobs import job_log
from aedepth.latents import read_latents
from aedepth.metrics import latent_metrics, reconstruction_errors
from aedepth.model import load_model, reconstruct_images
from aedepth.train import kept_epoch

with job_log(snakemake.log[0]):
    hparams = read_json(snakemake.input.hparams)
    data = load_dataset(snakemake.input.data)
    splits, metadata = read_latents(snakemake.input.latents)
    x_test = data["x_test"].reshape(len(data["x_test"]), -1) / 255.0
    scores = latent_metrics(*splits["train"], *splits["test"], x_test, **snakemake.params.metrics)
    model = load_model(snakemake.input.weights, hparams)
    scores |= reconstruction_errors(x_test, reconstruct_images(model, data["x_test"]))
    history = pd.read_csv(snakemake.input.history)
    epoch = kept_epoch(history["val_loss"].tolist(), hparams["early_stopping_patience"])
    kept = history.iloc[epoch - 1]
    losses = {
        "kept_epoch": epoch,
        "train_loss": float(kept["train_loss"]),
        "val_loss": float(kept["val_loss"]),
        "loss_gap": float(kept["val_loss"] - kept["train_loss"]),
    }
    write_json(
        snakemake.output[0],
        {
            "model": model_id(hparams["depth"], hparams["latent_dim"], hparams["seed"]),
            "method": "autoencoder",
            "depth": hparams["depth"],
            "seed": hparams["seed"],
            "latent_dim": hparams["latent_dim"],
            "n_test": len(x_test),
            **scores,
            **losses,
        },
    )
