"""What the real ``ffexp`` command says about itself: --help, --version and Hydra's flags."""

from __future__ import annotations

import pytest

from conftest import ffexp

from ffexp.launch import cli


def test_help_says_what_ffexp_is_and_lists_only_user_groups(tmp_path):
    run = ffexp("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("ffexp trains a pure-numpy feedforward network")
    groups = dict(line.strip().split(": ", 1) for line in run.stdout.splitlines()
                  if line.startswith("  ") and ": " in line and "=" not in line.split(": ")[0]
                  and line.strip().split(": ")[0].isidentifier())
    assert {"activation", "dataset", "init", "loss", "optimizer", "experiment"} <= set(groups)
    assert "schema" not in groups and "hydra" not in groups
    assert "relu" in groups["activation"].split(", ")
    assert "  ffexp -m activation=relu,tanh seed=0,1,2" in run.stdout  # one example per line
    assert "hidden_sizes:" in run.stdout  # Hydra's composed config follows
    assert not (tmp_path / "outputs").exists()


def test_help_shows_the_config_as_overridden(tmp_path):
    run = ffexp("dataset=iris", "--help", cwd=tmp_path)
    assert run.returncode == 0 and "name: iris" in run.stdout


def test_version_names_ffexp_and_its_libraries(tmp_path):
    run = ffexp("--version", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.startswith("ffexp ") and "hydra-core" in run.stdout and "mlflow" in run.stdout
    assert "Hydra 1." not in run.stdout  # not Hydra's own --version


@pytest.mark.parametrize("args,needle", [
    (["--shell-completion", "install=bash"], "hydra_bash_completion"),
    (["--cfg", "job"], "hidden_sizes:"),
    (["--cfg", "job", "--resolve"], "hidden_sizes:"),
    (["--cfg", "job", "-p", "model"], "# @package model"),
    (["--info", "defaults"], "Defaults List"),
])
def test_hydra_flags_that_work(tmp_path, args, needle):
    run = ffexp(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert needle in run.stdout and "Traceback" not in run.stderr


@pytest.mark.parametrize("args,needle", [
    (["--shell-completion"], "--shell-completion takes one of install=SHELL"),
    (["--shell-completion", "query=bash"], "reads COMP_LINE"),
    (["--resolve"], "--resolve goes with --cfg or --help"),
    (["-p", "model"], "--package/-p goes with --cfg"),
    (["--cfg", "bogus"], "invalid choice: 'bogus'"),
])
def test_hydra_flags_that_cannot_work_end_in_one_line(tmp_path, args, needle):
    run = ffexp(*args, cwd=tmp_path)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ffexp: error:") and needle in last
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlflow.db").exists()


def test_completion_query_completes_a_group(tmp_path, monkeypatch):
    monkeypatch.setenv("COMP_LINE", "ffexp activation=")
    run = ffexp("--shell-completion", "query=bash", cwd=tmp_path)
    assert run.returncode == 0 and "activation=tanh" in run.stdout.split()


def test_flag_problem_accepts_the_working_combinations():
    assert cli.flag_problem(["--cfg", "job", "--resolve"], {}) is None
    assert cli.flag_problem(["--help", "--resolve"], {}) is None
    assert cli.flag_problem(["-sc", "install=zsh"], {}) is None
    assert cli.flag_problem(["-sc", "query=bash"], {"COMP_LINE": "ffexp "}) is None
    assert cli.flag_problem(["activation=relu"], {}) is None


def test_help_into_a_closed_pipe_prints_no_traceback(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    exe = str(Path(sys.executable).with_name("ffexp"))
    run = subprocess.run(f"'{exe}' --help | head -n 1", shell=True, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.stdout.startswith("ffexp trains") and len(run.stdout.splitlines()) == 1
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


def test_flags_may_come_after_overrides():
    assert cli.flags_first(["seed=1", "-m", "activation=relu,tanh"]) == \
        ["-m", "seed=1", "activation=relu,tanh"]
    assert cli.flags_first(["a=1", "--cfg", "job", "b=2", "-p", "model", "--resolve"]) == \
        ["--cfg", "job", "-p", "model", "--resolve", "a=1", "b=2"]
    assert cli.flags_first(["a=1", "--info", "b=2", "-i", "plugins", "--cfg=job"]) == \
        ["--info", "-i", "plugins", "--cfg=job", "a=1", "b=2"]
    assert cli.flags_first(["a=1", "--", "-m"]) == ["a=1", "--", "-m"]


def test_an_override_before_a_flag_is_composed_not_refused(tmp_path):
    run = ffexp("seed=7", "--cfg", "job", "activation=tanh", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "\nseed: 7\n" in run.stdout and "activation:\n  name: tanh\n" in run.stdout
    assert "usage:" not in run.stderr
