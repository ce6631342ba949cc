"""The documentation stays honest: links resolve, referenced docs exist, every config key and
every example is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DOCS = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md"]
    + list((REPO / "docs").glob("*.md"))
    + [REPO / "benchmarks" / "README.md"]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOC_REFERENCE = re.compile(r"\bdocs/([\w.-]+\.md)")
# Where code, config and docs point readers (text files only).
REFERRING = ["workflow", "tests", "benchmarks", "examples", "profiles", "docs"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]  # not http:, mailto:


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
    texts = [
        REPO / name for name in ("config.yaml", "README.md", "CONTRIBUTING.md", "CHANGELOG.md")
    ]
    for folder in REFERRING:
        texts += [
            p
            for p in (REPO / folder).rglob("*")
            if p.suffix in {".py", ".smk", ".md", ".yaml", ".rst"}
        ]
    missing = {
        f"{path.relative_to(REPO)}: docs/{name}"
        for path in texts
        for name in DOC_REFERENCE.findall(path.read_text())
        if not (REPO / "docs" / name).exists()
    }
    assert not missing


def test_every_config_key_is_documented():
    keys = yaml.safe_load((REPO / "config.yaml").read_text())
    documented = (REPO / "docs" / "configuration.md").read_text()
    assert [key for key in keys if f"`{key}`" not in documented] == []


def test_every_example_is_listed_in_the_readme():
    readme = (REPO / "README.md").read_text()
    examples = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").glob("*.yaml"))
    assert examples and [e for e in examples if f"`{e}`" not in readme] == []


def test_the_readme_stays_short_and_free_of_history():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    assert not re.search(r"before (the|subnormals)|an earlier measurement", readme)
