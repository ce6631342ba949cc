"""Snakemake adapter: results/<study>/summary.csv as a standalone HTML table for the Snakemake report.

The report offers a CSV only as a download; an HTML page it shows inline.
"""

import pandas as pd

from aedepth.files import atomic_output, html_page, read_table
from aedepth.jobs import job_log

with job_log(snakemake.log[0]):
    summary = read_table(snakemake.input.summary, ("model",)).set_index("model")
    digits = snakemake.params.significant_digits

    def cell(value):
        if pd.isna(value):
            return ""
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    # one column per model, one row per metric: fits the report's panel however many metrics
    table = summary.map(cell).T.to_html()
    with atomic_output(snakemake.output[0]) as tmp:
        tmp.write_text(html_page("Summary", table))
