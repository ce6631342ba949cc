"""The user's data where it is shown: class names, file names, dataset and study names may hold
any text, so each is escaped for the place it reaches, here and only here.

- HTML that aedepth writes (the latent explorer's page): `html_text`.
- Snakemake's report: it writes each report job's params into a <script> element as they are
  (Snakemake 9.27, html_reporter: `var results = {...}`), where a `</script>` in a class name or
  a path would end the script and run what follows. So rules pass the user's data to report jobs
  as `report_param` (as it is where its JSON holds no `<`, `>` or `&`, else that JSON with each as
  a \\u escape), and scripts read it back with `param_value`.
- The report's captions (reStructuredText): the Jinja macro `text()` in workflow/report/*.rst.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
SCRIPT_SAFE_JSON = "script_safe_json"  # the key of a report_param that holds JSON


def html_text(value: Any) -> str:
    """`value` as HTML text (quotes too, for attributes)."""
    return html.escape(str(value), quote=True)


def report_param(value: Any) -> Any:
    """`value` (any JSON value) as a rule's param that Snakemake's report can show as it is:
    `value` itself where its JSON holds no `<`, `>` or `&` (so a study's params, and with them
    its jobs, stay as they were), else {SCRIPT_SAFE_JSON: that JSON with each as a \\u escape},
    which can never end the report's <script>."""
    text = json.dumps(value, ensure_ascii=True)
    if not re.search("[<>&]", text):
        return value
    return {SCRIPT_SAFE_JSON: text.translate(_SCRIPT_SAFE)}


def param_value(param: Any) -> Any:
    """The value a `report_param` holds."""
    if isinstance(param, dict) and set(param) == {SCRIPT_SAFE_JSON}:
        return json.loads(param[SCRIPT_SAFE_JSON])
    return param
