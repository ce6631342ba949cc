"""Snakemake adapter: intervals over seeds, paired depth comparisons and the written findings."""

from aedepth.files import atomic_output, read_table
from aedepth.grid import AUTOENCODER, COMPARED, REPLICATE
from aedepth.jobs import job_log
from aedepth.metrics import METRICS
from aedepth.stats import (
    depth_comparisons,
    depth_intervals,
    findings_markdown,
    headline,
    headline_rst,
)

with job_log(snakemake.log[0]):
    conditions = snakemake.params.conditions
    # the columns every step below reads: a damaged summary is refused in one line
    summary = read_table(
        snakemake.input.summary,
        ("method", COMPARED, REPLICATE, *conditions),
        numeric=(COMPARED, REPLICATE, *METRICS, "loss_gap"),
    )
    intervals = depth_intervals(summary, conditions)
    comparisons = depth_comparisons(summary[summary["method"] == AUTOENCODER], conditions)
    data = f"{snakemake.params.dataset} (source: {snakemake.params.source})"
    for table, path in (
        (intervals, snakemake.output.intervals),
        (comparisons, snakemake.output.comparisons),
    ):
        with atomic_output(path) as tmp:
            table.to_csv(tmp, index=False)
    findings = findings_markdown(
        summary,
        intervals,
        comparisons,
        conditions,
        snakemake.params.labels,
        data,
        # The published reference points are for the full data set only.
        snakemake.params.dataset if snakemake.params.source != "sample" else None,
        snakemake.params.omit,
    )
    sentences = headline(
        summary, comparisons, conditions, snakemake.params.labels, snakemake.params.omit
    )
    for text, path in (
        (findings, snakemake.output.findings),
        (headline_rst(sentences), snakemake.output.headline),
    ):
        with atomic_output(path) as tmp:
            tmp.write_text(text)
