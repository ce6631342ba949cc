"""Snakemake adapter: every metric against depth with 95 % intervals and the baselines."""

import pandas as pd

from aedepth.jobs import job_log
from aedepth.plots import metrics_vs_depth, save_figure

with job_log(snakemake.log[0]):
    figure = metrics_vs_depth(
        pd.read_csv(snakemake.input.summary), snakemake.params.conditions, snakemake.params.labels
    )
    save_figure(figure, snakemake.output[0], snakemake.params.dpi)
