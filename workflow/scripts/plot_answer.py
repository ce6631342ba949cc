"""Snakemake adapter: the answer at a glance (headline metrics against depth per arm, the
baselines as reference lines, verdict marks), and the loss gap against depth."""

import pandas as pd

from aedepth.jobs import job_log
from aedepth.plots import answer_figure, gap_vs_depth, save_figure

with job_log(snakemake.log[0]):
    intervals = pd.read_csv(snakemake.input.intervals)
    comparisons = pd.read_csv(snakemake.input.comparisons)
    conditions, labels = snakemake.params.conditions, snakemake.params.labels
    save_figure(
        answer_figure(intervals, comparisons, conditions, labels),
        snakemake.output.answer,
        snakemake.params.dpi,
    )
    save_figure(
        gap_vs_depth(intervals, conditions, labels), snakemake.output.gap, snakemake.params.dpi
    )
