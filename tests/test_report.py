"""The Snakemake report's home page (workflow/report/workflow.rst) leads with the answer.

A tiny study on the offline sample, then `snakemake --report`: the home page's HTML is read
back from the report (a JSON string in the page's JavaScript) and compared with findings.md.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from html import unescape

import pytest
from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

STUDY = "tiny"
SNAPSHOT = f"results/{STUDY}/study.yaml"  # a study's first file; no report entry
CONFIG = ("source=sample", "epochs=1", "seeds=[0,1]", "depths=[1,2,3]", f"study={STUDY}")


def home_page(report: str) -> str:
    """The home page's HTML, as the report's script holds it (a JSON string)."""
    return json.loads(re.search(r"var workflow_desc = (.*?);\n", report).group(1))


def report_entries(report: str) -> dict:
    return json.loads(re.search(r"var results = (\{.*?\});\n", report).group(1))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished tiny study and its report: (folder, the report's HTML)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("report") / "study")
    snakemake(workdir, "--cores", "2", "--config", *CONFIG)
    snakemake(workdir, "--report", "report.html", "--config", *CONFIG)
    return workdir, (workdir / "report.html").read_text()


def test_home_page_leads_with_the_headline_of_the_findings(study):
    workdir, report = study
    findings = (workdir / "results" / STUDY / "findings.md").read_text().splitlines()
    # findings.md: its title, then the headline sentences as bold bullets
    headline = []
    for line in findings[2:]:
        if not (sentence := re.fullmatch(r"- \*\*(.+)\*\*", line)):
            break
        headline.append(sentence.group(1))
    assert [s.split(":")[0] for s in headline] == ["1 → 2 hidden layers", "2 → 3 hidden layers"]

    page = home_page(report)
    items = re.search(r"<ul[^>]*>(.*?)</ul>", page, re.DOTALL).group(1)
    shown = [unescape(item) for item in re.findall(r"<li>(.*?)</li>", items, re.DOTALL)]
    assert shown == headline
    # the answer first: the headline, then the figure, then the description of the study
    study_text = page.index("MLP autoencoders with 1, 2, 3 hidden layer(s)")
    assert page.index("hidden layers:") < page.index("<img") < study_text
    # the figure is answer.png itself, embedded, so the page needs no other file
    source = re.search(r'<img [^>]*src="data:image/png,([^"]*)"', page).group(1)
    figure = workdir / "results" / STUDY / "figures/answer.png"
    assert urllib.parse.unquote_to_bytes(source) == figure.read_bytes()


def test_per_depth_entries_form_a_table_with_a_toggle_between_the_figures(study):
    """Snakemake shows a category's entries as a table when each has labels, and a label
    (other than the first) with two values on half the entries each as a toggle."""
    _, report = study
    entries = report_entries(report).values()
    assert all(entry["labels"] for entry in entries)
    per_depth = [entry["labels"] for entry in entries if "_dim2_" in entry["name"]]
    assert len(per_depth) == 6  # latent space and reconstructions of three depths
    first = {next(iter(labels)) for labels in per_depth}
    assert first == {"depth"}
    figures = [labels["figure"] for labels in per_depth]
    assert sorted(set(figures)) == ["latent space", "reconstructions"]
    assert figures.count("latent space") == figures.count("reconstructions")


def test_home_page_without_findings_says_so(tmp_path):
    """Before the study has run: a report of a target that holds no findings."""
    workdir = copy_workflow(tmp_path / "study")
    snakemake(workdir, "--report", "report.html", "--config", *CONFIG, "--", SNAPSHOT)
    page = home_page((workdir / "report.html").read_text())
    assert "This report holds no findings yet" in page
    assert "<img" not in page and "hidden layers:" not in page
    assert "MLP autoencoders with 1, 2, 3 hidden layer(s)" in page
