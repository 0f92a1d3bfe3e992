"""The submitting console's lines for jobs that run elsewhere (ffexp.launch.watch)."""

from __future__ import annotations

import json

from ffexp.launch.watch import Watcher, line_of, uses_remote_jobs


def _write(sweep, num: int, text: str) -> None:
    (sweep / str(num)).mkdir(parents=True, exist_ok=True)
    (sweep / str(num) / "ffexp_status.json").write_text(text)


def test_each_ended_job_is_printed_once_as_it_ends(tmp_path, capsys):
    ok = {"job_num": 0, "overrides": ["seed=0"], "status": "ok", "outcome": "finished",
          "metric": "val/accuracy", "value": 0.9, "seconds": 1.5, "run_id": "a", "rerun_of": []}
    failed = {"job_num": 1, "overrides": ["seed=1"], "status": "failed", "outcome": "failed",
              "error": "optimizer.lr=-1.0: the learning rate must be a positive number",
              "seconds": 0.1, "run_id": None}
    _write(tmp_path / "skipped", 5, json.dumps({**ok, "job_num": 5}))  # printed before
    watcher = Watcher(tmp_path, interval=3600)
    with watcher:
        _write(tmp_path, 0, json.dumps(ok))
        _write(tmp_path, 1, json.dumps(failed)[:20])   # being written
        assert watcher.poll() == 1
        _write(tmp_path, 1, json.dumps(failed))
    # the last pass, when the launcher returned, prints the rest
    assert capsys.readouterr().out.splitlines() == [
        "[job 0] seed=0: finished  val/accuracy=0.9000  (1.50 s)",
        "[job 1] seed=1: FAILED  optimizer.lr=-1.0: the learning rate must be a positive number"
        "  (0.10 s)"]


def test_a_skipped_job_line():
    assert line_of({"job_num": 2, "overrides": ["seed=2"], "status": "skipped",
                    "outcome": "skipped", "seconds": 0, "run_id": "r1"}) == \
        "[job 2] seed=2: skipped  run r1 finished it before  (0.00 s)"


def test_only_submitit_launchers_are_watched():
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher
    assert uses_remote_jobs(LocalLauncher.__new__(LocalLauncher))
    assert not uses_remote_jobs(JoblibLauncher.__new__(JoblibLauncher))
