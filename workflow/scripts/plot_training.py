"""Snakemake adapter: train and validation loss per epoch for every depth and seed."""

import pandas as pd

from aedepth.files import read_json
from aedepth.jobs import job_log
from aedepth.plots import save_figure, training_curves

with job_log(snakemake.log[0]):
    histories: dict[tuple[int, int], dict[int, pd.DataFrame]] = {}
    for hparams_path, history_path in zip(snakemake.input.hparams, snakemake.input.histories):
        hparams = read_json(hparams_path)
        key = (hparams["latent_dim"], hparams["depth"])
        histories.setdefault(key, {})[hparams["seed"]] = pd.read_csv(history_path)
    save_figure(training_curves(histories), snakemake.output[0], snakemake.params.dpi)
