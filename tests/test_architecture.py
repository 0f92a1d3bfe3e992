"""The layout's contracts: packages import one way (no cycle, no import against the layers),
libraries stay in their layers, private APIs stay in ffexp._compat, and every library ffexp
imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the ffexp packages it may import (the layers, inside out); the top level
#: ffexp/__init__.py and __main__.py are the public entry points and may import any
LAYERS: dict[str, set[str]] = {
    "ffexp.nn": set(),
    "ffexp._compat": set(),
    "ffexp.job": {"ffexp.nn"},
    "ffexp.sklearn": {"ffexp.nn", "ffexp.job", "ffexp._compat"},
    "ffexp.plots": {"ffexp.nn", "ffexp.job", "ffexp._compat"},
    "ffexp.tracking": {"ffexp.nn", "ffexp.job", "ffexp.plots", "ffexp._compat"},
    "ffexp.report": {"ffexp.nn", "ffexp.job", "ffexp.plots", "ffexp.tracking", "ffexp._compat",
                     "ffexp.launch"},   # the chaos probe rebuilds a job from its params
    "ffexp.launch": {"ffexp.nn", "ffexp.job", "ffexp.plots", "ffexp.tracking", "ffexp._compat"},
    "hydra_plugins.ffexp_sweeper": {"ffexp.launch"},
    "hydra_plugins.ffexp_optuna": {"ffexp.launch"},   # only when it sweeps (Hydra's scan
                                                       # imports the module in any app)
}
#: the packages of this repository (other hydra_plugins.* are installed libraries)
OWN = tuple(LAYERS)
#: libraries each layer may import besides numpy and the standard library
LIBRARIES: dict[str, set[str]] = {
    "ffexp.nn": set(),
    "ffexp.job": {"sklearn", "threadpoolctl", "tqdm"},
    "ffexp.sklearn": {"sklearn", "pandas"},
    "ffexp.plots": {"matplotlib", "PIL", "isal"},   # Pillow: RGBA to RGB; isal: the PNGs' deflate
}


def _package(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "hydra_plugins":
        return ".".join(parts[:2])
    return ".".join(parts[:2]) if len(parts) > 2 else "ffexp"


def _imports(path: Path):
    """The absolute module names a file imports (relative imports resolved)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module
            else:
                base = parts[:len(parts) - node.level]
                yield ".".join(base + ([node.module] if node.module else []))


SOURCES = sorted([*ROOT.joinpath("ffexp").rglob("*.py"), *ROOT.joinpath("hydra_plugins").rglob("*.py")])
CODE = [p for p in SOURCES if _package(p) in LAYERS]


def _own(module: str) -> str | None:
    """The repository's package ``module`` belongs to; None for a library."""
    if module == "ffexp":
        return "ffexp"
    return next((p for p in OWN if module == p or module.startswith(p + ".")), None)


@pytest.mark.parametrize("path", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_imports_follow_the_layers(path):
    package = _package(path)
    for module in _imports(path):
        target = _own(module)
        if target is None:
            continue
        assert target != "ffexp", f"{path.name}: imports the top-level package ffexp"
        assert target == package or target in LAYERS[package], (
            f"{path.relative_to(ROOT)} ({package}) imports {module}: against the layers")


def test_the_layers_have_no_cycle():
    seen: dict[str, int] = {}

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"cycle: {' -> '.join((*stack, node))}"
        for nxt in LAYERS[node]:
            visit(nxt, (*stack, node))

    for package in LAYERS:
        visit(package, ())


@pytest.mark.parametrize("package", sorted(LIBRARIES))
def test_libraries_stay_in_their_layers(package):
    allowed = set(sys.stdlib_module_names) | {"numpy", "ffexp"} | LIBRARIES[package]
    for path in CODE:
        if _package(path) != package:
            continue
        for module in _imports(path):
            assert module.split(".")[0] in allowed, f"{path.relative_to(ROOT)} imports {module}"


_PRIVATE = re.compile(r"(^|\.)_(?!_|compat\b)")


@pytest.mark.parametrize("path", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_private_apis_of_libraries_stay_in_ffexp_compat(path):
    if _package(path) == "ffexp._compat":
        return
    for module in _imports(path):
        if _own(module):
            continue
        assert not _PRIVATE.search(module), (
            f"{path.relative_to(ROOT)} imports the private module {module}: ffexp/_compat")


def test_the_top_level_holds_the_public_entry_points_only():
    assert sorted(p.name for p in ROOT.joinpath("ffexp").glob("*.py")) == ["__init__.py",
                                                                         "__main__.py"]


# ---- declared dependencies ------------------------------------------------------------------

def _requirement_names(requirements) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower().replace("_", "-")
            for r in requirements}


def test_every_imported_library_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared |= _requirement_names(extra)
    distributions = metadata.packages_distributions()
    missing = {}
    for path in SOURCES:
        for module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or _own(module):
                continue
            names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not names & declared:
                missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported but not in pyproject.toml: {missing}"
