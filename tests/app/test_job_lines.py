"""A sweep's job lines show only what varies between its jobs."""

from __future__ import annotations

import re

import pytest

from conftest import ffexp
from ffexp.job.progress import job_line
from ffexp.launch.status import sweeps, varied_keys


@pytest.mark.parametrize("value, several", [
    ("relu,tanh", True), ("[16],[16,16,16]", True), ("{name:he},{name:xavier,bias:2.0}", True),
    ("range(3)", True), ("interval(0.01,0.5)", True), ("[32,32]", False),
    ("{name:standard,distribution:uniform}", False), ("'a,b'", False), ("0.1", False),
])
def test_sweeps(value, several):
    assert sweeps(value) is several


def test_varied_keys_of_the_command_line_and_the_preset():
    command = "ffexp -m activation=relu,tanh 'model.hidden_sizes=[8,8]' train.epochs=2 seed=0,1"
    preset = {"init": "{name:he},{name:xavier}", "train.tol": "0.001"}
    assert varied_keys(command, preset) == {"activation", "seed", "init"}


def test_job_line_leaves_out_the_common_overrides():
    line = job_line(1, ["activation=tanh", "model.hidden_sizes=[8,8]", "seed=1"], "finished",
                    0.5, varied={"activation", "seed"})
    assert line == "[job 1] activation=tanh seed=1: finished  (0.50 s)"


def test_a_sweeps_job_lines_through_the_command(tmp_path):
    proc = ffexp("-m", "activation=relu,tanh", "model.hidden_sizes=[8,8]", "train.epochs=1",
                 "tracking.enabled=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[job ")]
    assert [re.sub(r":.*", "", ln) for ln in lines] == ["[job 0] activation=relu",
                                                        "[job 1] activation=tanh"]
