"""Snakemake adapter: every metric against depth, seeds as points, PCA as a reference line."""

import pandas as pd

from aedepth.jobs import job_log
from aedepth.plots import metrics_vs_depth, save_figure

with job_log(snakemake.log[0]):
    summary = pd.read_csv(snakemake.input.summary)
    save_figure(metrics_vs_depth(summary), snakemake.output[0], snakemake.params.dpi)
