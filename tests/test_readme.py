"""The README is the front door: CI must run exactly its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    """CI's first pytest line is the README's test command (the install included); its last
    runs the integration slice, which the README shows too."""
    readme = (ROOT / "README.md").read_text()
    ci_lines = _code_lines((ROOT / ".ci" / "run").read_text())
    tests = [line for line in ci_lines if "pytest" in line]
    command = tests[0]
    assert command in readme, f"the README does not show CI's command: {command}"
    assert "-m integration" not in command
    assert tests[-1].endswith("-m integration") and "pytest -m integration" in readme


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_no_link_leaves_the_repository():
    """Every Markdown link and image of the README and docs/ points at a file of the checkout
    (and an anchor at one of its headings): nothing under ../shared, no absolute path."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        # a link's target has a dot, a slash or an anchor; math such as g[l](z[l]) has none
        for target in re.findall(r"\]\(([^)\s\[]*[./#][^)\s\[]*)\)", text):
            where = f"{page.relative_to(ROOT)}: ({target})"
            assert not target.startswith(("/", "http:", "https:", "file:")), where
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.is_relative_to(ROOT) and file.exists(), where
            if anchor:
                headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
                assert anchor in {_slug(h) for h in headings}, where
            checked += 1
        assert "../shared" not in page.read_text(), page
    assert checked > 10
