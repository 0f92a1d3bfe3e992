"""The README is the front door: CI must run exactly its test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = _code_lines((ROOT / ".ci" / "run").read_text())
    command = ci_lines[-1]
    assert "pytest" in command
    assert command in readme, f"the README does not show CI's command: {command}"
