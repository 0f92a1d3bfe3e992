"""Bad input: one line ``ffexp-report: error: …`` on stderr, exit status 2, no traceback."""

from __future__ import annotations

import subprocess

import pytest

from ffexp.report.cli import main

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


#: run as real subprocesses (the entry point, its exit status, the store being absent or
#: unreachable); the other cases call the same ``main`` in-process, which is much faster
SUBPROCESS = ("unknown experiment", "missing store", "unreachable server")


def _args(case: str, real_sweep) -> list[str]:
    args = [a.format(root=real_sweep["root"]) for a in CASES[case][0]]
    if "--tracking-uri" not in args:
        args = ["--tracking-uri", real_sweep["uri"], *args]
    return args


@pytest.fixture(scope="module")
def results(real_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("err")
    procs = {name: subprocess.Popen([*REPORT, *_args(name, real_sweep), "--output", str(out / "r")],
                                    cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name in SUBPROCESS}
    # the timeout only guards against a hang (MLflow's default HTTP retries take minutes)
    return {name: (p.wait(timeout=300), *p.communicate()) for name, p in procs.items()}


def _check(rc: int, stdout: str, stderr: str, case: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("ffexp-report: error: "), stderr
    assert CASES[case][1] in lines[0]
    assert "Traceback" not in stderr and stdout == ""


@pytest.mark.parametrize("case", SUBPROCESS)
def test_bad_input_gives_one_line_and_nonzero_exit(results, case):
    _check(*results[case], case)


@pytest.mark.parametrize("case", [c for c in CASES if c not in SUBPROCESS])
def test_bad_selection_gives_one_line_and_status_2(real_sweep, tmp_path, capsys, case):
    rc = main([*_args(case, real_sweep), "--output", str(tmp_path / "r")])
    captured = capsys.readouterr()
    _check(rc, captured.out, captured.err, case)
