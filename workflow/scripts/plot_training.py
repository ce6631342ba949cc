"""Snakemake adapter: the loss curves of every model, a panel per setting, a colour per seed."""

import pandas as pd

from aedepth.jobs import job_log
from aedepth.plots import save_figure, training_curves
from aedepth.grid import setting_label

with job_log(snakemake.log[0]):
    labels = snakemake.params.labels
    histories = pd.concat(
        pd.read_csv(path).assign(
            setting=setting_label(record, list(labels), labels), seed=record["seed"]
        )
        for record, path in zip(snakemake.params.records, snakemake.input.histories)
    )
    save_figure(training_curves(histories), snakemake.output[0], snakemake.params.dpi)
