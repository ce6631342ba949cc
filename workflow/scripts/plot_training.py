"""Snakemake adapter: the loss curves of every model, a panel per setting, a colour per seed;
each panel says how many seeds were still improving at their last epoch."""

import pandas as pd

from aedepth.files import read_table
from aedepth.grid import setting_label
from aedepth.jobs import job_log
from aedepth.plots import save_figure, training_curves
from aedepth.summary import convergence

# The columns of history.csv that kept_losses and convergence read.
HISTORY = ("epoch", "train_loss", "val_loss", "test_loss", "kept")

with job_log(snakemake.log[0]):
    labels = snakemake.params.labels
    histories, improving = [], {}
    for record, path in zip(snakemake.params.records, snakemake.input.histories):
        history = read_table(path, HISTORY, HISTORY)
        setting = setting_label(record, list(labels), labels, snakemake.params.omit)
        histories.append(history.assign(setting=setting, seed=record["seed"]))
        improving.setdefault(setting, []).append(convergence(history)["still_improving"])
    figure = training_curves(pd.concat(histories), improving)
    save_figure(figure, snakemake.output[0], snakemake.params.dpi)
