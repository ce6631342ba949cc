"""The documentation stays honest: links and their anchors resolve, every docs file and section
that code, config or docs point to exists, every config key and every example is documented,
and the README stays a short guide for users."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DOCS = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md"]
    + list((REPO / "docs").glob("*.md"))
    + [REPO / "benchmarks" / "README.md"]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
DOC_REFERENCE = re.compile(r"\bdocs/([\w.-]+\.md)")
# A section named in prose: README, "Run" / docs/methods.md, "Reference ceilings".
SECTION_REFERENCE = re.compile(r'\b((?:[\w-]+/)*[\w.-]+\.md|README)\s*,\s*"([^"\n]+)"')
# Where code, config and docs point readers (text files only).
REFERRING = ["workflow", "tests", "benchmarks", "examples", "profiles", "docs"]
TEXT_SUFFIXES = {".py", ".smk", ".md", ".yaml", ".yml", ".rst", ".sh", ".toml"}


def referring_files() -> list[Path]:
    files = [REPO / "config.yaml", REPO / "Snakefile", *REPO.glob("*.md")]
    for folder in REFERRING:
        files += [
            path
            for path in (REPO / folder).rglob("*")
            if path.suffix in TEXT_SUFFIXES and ".egg-info" not in str(path)
        ]
    return sorted(set(files) - {Path(__file__).resolve()})


def without_code_blocks(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (backticks, dots, ...) dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    headings = re.findall(r"^#{1,6} +(.+?) *#*$", without_code_blocks(path.read_text()), re.M)
    seen: Counter[str] = Counter()
    found = set()
    for heading in headings:
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def links(path: Path) -> list[str]:
    targets = LINK.findall(without_code_blocks(path.read_text()))
    return [t for t in targets if not re.match(r"[a-z]+:", t)]  # not http:, mailto:


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in links(doc):
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)}: broken links {broken}"


def test_every_docs_file_mentioned_exists():
    missing = {
        f"{path.relative_to(REPO)}: docs/{name}"
        for path in referring_files()
        for name in DOC_REFERENCE.findall(path.read_text())
        if not (REPO / "docs" / name).exists()
    }
    assert not missing


def test_every_section_named_in_prose_exists():
    missing = []
    for path in referring_files():
        for file, section in SECTION_REFERENCE.findall(path.read_text()):
            target = REPO / ("README.md" if file == "README" else file)
            if not target.exists() or slug(section) not in anchors(target):
                missing.append(f'{path.relative_to(REPO)}: {file}, "{section}"')
    assert not missing


def test_every_config_key_is_documented():
    keys = yaml.safe_load((REPO / "config.yaml").read_text())
    documented = (REPO / "docs" / "configuration.md").read_text()
    assert [key for key in keys if f"`{key}`" not in documented] == []


def test_every_example_is_listed_in_the_readme():
    readme = (REPO / "README.md").read_text()
    examples = sorted(p.name for p in (REPO / "examples").iterdir() if p.is_file())
    assert examples and [e for e in examples if f"examples/{e}" not in readme] == []


def test_the_readme_stays_short_and_free_of_history():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    assert not re.search(r"before (the|subnormals)|an earlier measurement", readme)


def test_the_first_60_lines_of_the_readme_get_a_newcomer_going():
    start = "\n".join((REPO / "README.md").read_text().splitlines()[:60])
    for needed in (
        "pip install -r requirements-dev.txt",  # install
        "--config source=sample",  # the offline sample
        "findings.md",
        "figures/answer.png",
        "docs/configuration.md",
        "docs/slurm.md",
    ):
        assert needed in start, needed
