"""Bad input: one line ``ffexp-report: error: …`` on stderr, exit status 2, no traceback.

All cases run as concurrent subprocesses (the real entry point) once per module.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from .conftest import REPORT

CASES = {
    "unknown experiment": (["--experiment", "nope"],
                           "unknown experiment 'nope' (experiments: Default, moons)"),
    "no runs": (["--experiment", "moons", "--filter", "params.activation = 'sigmoid'"],
                "the selection has no runs (experiment = moons; filter = "),
    "unknown sweep": (["--sweep", "no-such-sweep"], "no sweep with parent run id or sweep id"),
    "bad filter": (["--filter", "params.activation === 'x'"], "invalid --filter"),
    "unknown metric": (["--metric", "val/nope"], "unknown metric 'val/nope' (metrics: act_dead/{1..2}, "
                                                 "act_mean/{1..2}"),
    "unknown group key": (["--group-by", "activation,nope"],
                          "unknown group key 'nope' (params: dataset, task, activation, init"),
    "bad --at": (["--at", "epoch zero"], "invalid --at 'epoch zero'"),
    "epoch never logged": (["--at", "epoch 99"], "no run has val/accuracy at epoch 99"),
    "missing store": (["--tracking-uri", "sqlite:///{root}/none.db"], "no MLflow store at "),
    "unreachable server": (["--tracking-uri", "http://127.0.0.1:9"],
                           "cannot read the tracking store http://127.0.0.1:9"),
}


@pytest.fixture(scope="module")
def results(real_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("err")
    procs, started = {}, time.monotonic()
    for name, (args, _) in CASES.items():
        args = [a.format(root=real_sweep["root"]) for a in args]
        if "--tracking-uri" not in args:
            args = ["--tracking-uri", real_sweep["uri"], *args]
        procs[name] = subprocess.Popen([*REPORT, *args, "--output", str(out / "r")], cwd=out,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = {name: (p.wait(timeout=180), *p.communicate()) for name, p in procs.items()}
    return done, time.monotonic() - started


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_nonzero_exit(results, case):
    (rc, stdout, stderr) = results[0][case]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("ffexp-report: error: "), stderr
    assert CASES[case][1] in lines[0]
    assert "Traceback" not in stderr and stdout == ""


def test_unreachable_server_fails_fast(results):
    # all ten cases ran concurrently on 2 cores; MLflow's default retries alone take minutes
    assert results[1] < 90
