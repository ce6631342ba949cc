"""The report's captions show the user's data (the dataset's name, the source's path) and the
config's values only as text: rendered as Snakemake renders them (Jinja, then docutils to HTML)
with hostile values, no element, link or raw HTML comes of them (#34 item 1)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from docutils.core import publish_parts
from jinja2 import Environment

REPORT = Path(__file__).resolve().parents[1] / "workflow" / "report"
CONFIG = yaml.safe_load((REPORT.parents[1] / "config.yaml").read_text())
# Each kind of payload, and reStructuredText's own ways to make HTML or a link of text.
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "`click <javascript:alert(2)>`_",
    "</script><script>alert(3)</script>",
    "x\n\n.. raw:: html\n\n   <svg onload=alert(4)>\n",
    "javascript:alert(5)",
    ":raw-html:`<b>6</b>` ``lit`` *em* |sub| [#]_ \\",
]
# Snakemake 9.27 still passes writer_name, as _render does.
pytestmark = pytest.mark.filterwarnings("ignore:Argument .writer_name.:PendingDeprecationWarning")
# An element a payload makes, a handler in any tag, a javascript: link.
UNSAFE = re.compile(
    r"<(?:img|script|svg|iframe|b)\b|<[^>]*\son\w+\s*=|href=\"\s*javascript", re.IGNORECASE
)


def _render(caption: Path, value: str) -> str:
    """`caption` as Snakemake 9's report renders it (snakemake/report/__init__.py): Jinja with
    trim_blocks and lstrip_blocks, then docutils' HTML writer; `value` in every string that
    comes from the user or the config (dataset, source, the setting's label)."""
    config = {**CONFIG, "dataset": value, "source": value}
    snakemake = SimpleNamespace(
        config=config, params=SimpleNamespace(setting=value, digits=8, points=1000)
    )
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(caption.read_text()).render(snakemake=snakemake, categories={}, files=[])
    return publish_parts(text, writer_name="html")["html_body"]


@pytest.mark.parametrize("caption", sorted(REPORT.glob("*.rst")), ids=lambda path: path.name)
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_a_caption_shows_hostile_values_as_text(caption, value):
    body = _render(caption, value)
    assert not UNSAFE.search(body), UNSAFE.search(body)


def test_the_values_are_shown_as_they_are():
    body = _render(REPORT / "workflow.rst", "<img src=x onerror=alert(1)> `a <javascript:b>`_")
    assert (
        "trained on\n&lt;img src=x onerror=alert(1)&gt; `a &lt;javascript:b&gt;`_ (source:" in body
    )
    body = _render(REPORT / "depth_latent.rst", "depth 1, latent size 2")
    assert "<strong>Latent space, depth 1, latent size 2.</strong>" in body


def test_every_caption_escapes_with_the_same_macro():
    definitions = {
        line for path in REPORT.glob("*.rst") for line in path.read_text().splitlines()
        if line.startswith("{% macro text(")
    }  # fmt: skip
    assert len(definitions) == 1


# --- Snakemake's report: params of report jobs ----------------------------------------------


def test_a_report_param_never_ends_the_reports_script_and_reads_back():
    from aedepth.markup import param_value, report_param

    names = ["</script><script>alert(3)</script>", "<img src=x onerror=alert(1)>", "a & b", "é"]
    for value in (names, "/tmp/a</script><script>alert(1)</script>/x.npz"):
        param = report_param(value)
        assert not re.search(r"[<>&]", str(param))
        assert param_value(param) == value
        # as Snakemake 9.27 writes a job's params into the report's <script>
        assert "</" not in json.dumps({"params": f"classes={param}"})
    # a value with nothing to escape is passed as it is: a study's params stay as they were
    for value in (["0", "1"], ["T-shirt/top", "Trouser"], "sample", "/data/a b/x.npz"):
        assert report_param(value) == value == param_value(value)
