"""Snakemake adapter: every metric against depth with 95 % intervals and the baselines."""

from aedepth.files import read_table
from aedepth.grid import COMPARED, REPLICATE
from aedepth.jobs import job_log
from aedepth.metrics import METRICS
from aedepth.plots import metrics_vs_depth, save_figure

with job_log(snakemake.log[0]):
    conditions = snakemake.params.conditions
    summary = read_table(
        snakemake.input.summary,
        ("method", COMPARED, REPLICATE, *conditions),
        numeric=(COMPARED, REPLICATE, *METRICS),
    )
    figure = metrics_vs_depth(summary, conditions, snakemake.params.labels)
    save_figure(figure, snakemake.output[0], snakemake.params.dpi)
