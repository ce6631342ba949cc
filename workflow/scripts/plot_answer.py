"""Snakemake adapter: the answer at a glance (headline metrics against depth per arm, the
baselines as reference lines, verdict marks), and the loss gap against depth."""

from aedepth.files import read_table
from aedepth.jobs import job_log
from aedepth.plots import answer_figure, gap_vs_depth, save_figure
from aedepth.stats import comparison_columns, interval_columns, primary_columns

with job_log(snakemake.log[0]):
    conditions, labels = snakemake.params.conditions, snakemake.params.labels
    statistics = ("mean", "ci_low", "ci_high")
    intervals = read_table(snakemake.input.intervals, interval_columns(conditions), statistics)
    comparisons = read_table(
        snakemake.input.comparisons,
        comparison_columns(conditions),
        ("mean_difference", "p_adjusted"),
    )
    primary = read_table(
        snakemake.input.primary, primary_columns(conditions), ("mean_difference", "p_adjusted")
    )
    save_figure(
        answer_figure(intervals, comparisons, conditions, labels, primary=primary),
        snakemake.output.answer,
        snakemake.params.dpi,
    )
    save_figure(
        gap_vs_depth(intervals, conditions, labels), snakemake.output.gap, snakemake.params.dpi
    )
