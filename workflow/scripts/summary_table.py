"""Snakemake adapter: results/summary.csv as a standalone HTML table for the Snakemake report.

The report offers a CSV only as a download; an HTML page it shows inline.
"""

import pandas as pd
from aedepth.files import atomic_output
from aedepth.jobs import job_log

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
tbody th { text-align: left; }
"""

with job_log(snakemake.log[0]):
    summary = pd.read_csv(snakemake.input.summary).set_index("model")
    digits = snakemake.params.significant_digits

    def cell(value):
        if pd.isna(value):
            return ""
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    # one column per model, one row per metric: fits the report's panel however many metrics
    table = summary.map(cell).T.to_html()
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Summary</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{table}\n</body></html>\n"
    )
    with atomic_output(snakemake.output[0]) as tmp:
        tmp.write_text(page)
