"""The README's five-minute tour, run as written (slow: about 2-4 minutes on 2 quiet cores).

Every shell line of the tour's ``bash`` blocks runs in a temporary directory, in order, each in
``bash -c 'source .venv/bin/activate && <line>'`` (``.venv`` there links to this interpreter's
virtual environment), with two changes a test needs: ``ffexp`` commands get ``train.epochs=3``
appended (short trainings), and ``mlflow ui`` runs in the background on a free 127.0.0.1 port
until it answers with the tour's experiments, then stops. A line that exits non-zero fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from readme_assets import free_port  # noqa: E402  (5900-5999, this issue's ports)

TOUR = "## A five-minute tour"
SHORT = "train.epochs=3"


def tour_commands(readme: str) -> list[str]:
    """The shell lines of the tour section's ```bash blocks, comments removed."""
    start = readme.index(TOUR)
    end = readme.find("\n## ", start + len(TOUR))
    section = readme[start:end if end > 0 else None]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(shlex.join(words))
    return lines


def test_the_tour_starts_by_activating_the_venv():
    """Fast: the tour is found, its first line activates the venv, and it has what the README
    promises (a run, a sweep, the UI, a report, a study)."""
    commands = tour_commands((ROOT / "README.md").read_text())
    assert commands[0] == "source .venv/bin/activate"
    firsts = [shlex.split(c)[0] for c in commands]
    assert {"ffexp", "mlflow", "ffexp-report"} <= set(firsts)
    assert any("-m" in shlex.split(c) for c in commands if c.startswith("ffexp "))
    assert any("+experiment=" in c for c in commands)


def _bash(cwd: Path, line: str, env: dict, **kw):
    return subprocess.Popen(["bash", "-c", f"source .venv/bin/activate && {line}"], cwd=cwd,
                            env=env, text=True, **kw)


def _mlflow_ui(cwd: Path, line: str, env: dict) -> list[str]:
    """Start the tour's ``mlflow ui`` on a free port, wait until it lists experiments, stop it."""
    words = shlex.split(line)
    if "--port" in words:
        del words[words.index("--port"):words.index("--port") + 2]
    port = free_port()
    server = _bash(cwd, f"exec {shlex.join(words)} --host 127.0.0.1 --port {port}", env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                body = urllib.request.urlopen(
                    base + "/ajax-api/2.0/mlflow/experiments/search?max_results=100",
                    timeout=10).read().decode()
                break
            except OSError:
                assert server.poll() is None, f"{line} exited: {server.stderr.read()}"
                assert time.monotonic() < deadline, f"{line} did not answer on {base}"
                time.sleep(1)
        return re.findall(r'"name": ?"([^"]+)"', body)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
@pytest.mark.integration
def test_the_tour_runs_as_written(tmp_path):
    commands = tour_commands((ROOT / "README.md").read_text())
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    for line in commands[1:]:
        words = shlex.split(line)
        if words[0] == "mlflow" and words[1] == "ui":
            experiments = _mlflow_ui(tmp_path, line, env)
            assert "moons" in experiments, experiments
            continue
        if words[0] == "ffexp":
            line = f"{line} {SHORT}"
        proc = _bash(tmp_path, line, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"README tour: `{line}` exited {proc.returncode}\n{out}"
    assert (tmp_path / "mlflow.db").is_file()
    assert any((tmp_path / "reports").glob("*/report.md"))
