"""One-way layers: the numerical core ffexp.nn imports numpy and the standard library only."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

NN = Path(__file__).resolve().parents[1] / "ffexp" / "nn"
FORBIDDEN = ("hydra", "omegaconf", "mlflow", "pandas", "sklearn", "matplotlib", "scipy", "tqdm")


def test_importing_ffexp_nn_loads_no_outer_dependency():
    code = ("import sys, ffexp.nn, ffexp.nn.gradcheck\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
            "print(','.join(bad))\n"
            "assert 'numpy' in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"ffexp.nn pulled in: {out.stdout.strip()}"


def _imports(path: Path):
    """(module, level) of every import statement in a file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


FILES = sorted(NN.glob("*.py"))


def test_there_are_engine_files():
    assert {"network.py", "activations.py", "losses.py", "gradcheck.py"} <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_engine_files_import_only_numpy_stdlib_or_relative(path):
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    for module, level in _imports(path):
        if level > 0:
            continue  # relative: within ffexp.nn (ast level 1) ...
        assert module.split(".")[0] in allowed, f"{path.name} imports {module!r}"


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_relative_imports_stay_inside_ffexp_nn(path):
    for module, level in _imports(path):
        assert level <= 1, f"{path.name} imports from outside ffexp.nn: {'.' * level}{module}"
