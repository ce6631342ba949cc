"""Snakemake adapter: intervals over seeds, paired depth comparisons and the written findings."""

import pandas as pd

from aedepth.files import atomic_output
from aedepth.jobs import job_log
from aedepth.stats import depth_comparisons, depth_intervals, findings_markdown

with job_log(snakemake.log[0]):
    summary = pd.read_csv(snakemake.input.summary)
    models = summary[summary["method"] == "autoencoder"]
    intervals = depth_intervals(models)
    comparisons = depth_comparisons(models)
    data = f"{snakemake.params.dataset} (source: {snakemake.params.source})"
    for table, path in (
        (intervals, snakemake.output.intervals),
        (comparisons, snakemake.output.comparisons),
    ):
        with atomic_output(path) as tmp:
            table.to_csv(tmp, index=False)
    with atomic_output(snakemake.output.findings) as tmp:
        tmp.write_text(findings_markdown(models, comparisons, data))
