"""The metrics helper (python -m ffexp.tracking.sender) and the buffer that feeds it: quiet when
its parent or pipe goes away, what it could not store counted in the job's log; started only by
a run that outlives a flush."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ffexp.tracking import buffer, sender

from helpers_tracking import FAST, FFEXP, ffexp_env


@pytest.fixture(autouse=True)
def no_helper_left(monkeypatch):
    """Each test starts without this process's metrics helper and ends it, passed or failed."""
    monkeypatch.setattr(sender, "_PROCESS", None)
    yield
    helper = sender.running()
    if helper is not None:
        helper.close()


def _helper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ffexp.tracking.sender"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_batch_cut_short_ends_the_helper_quietly_and_is_counted_in_the_job_log(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(exp).info.run_id
    job_log = tmp_path / "ffexp.log"
    helper = _helper()
    try:
        send = lambda message: pickle.dump(message, helper.stdin, protocol=5)
        send(("batch", uri, run_id, [("train/cost", 0.5, 0, 1)], str(job_log)))
        send(("batch", uri, "no-such-run", [("train/cost", 1.0, 0, s) for s in range(3)],
              str(job_log)))
        whole = pickle.dumps(("batch", uri, run_id, [("train/cost", 0.25, 0, 2)], str(job_log)))
        helper.stdin.write(whole[: len(whole) // 2])  # the parent killed while it was sending
        helper.stdin.close()
        out, err = helper.stdout.read(), helper.stderr.read()
        helper.wait(timeout=120)
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
    assert helper.returncode == 0 and err == b"" and out == b""
    assert [m.value for m in client.get_metric_history(run_id, "train/cost")] == [0.5]
    line = job_log.read_text()
    assert "the training process went away (UnpicklingError: pickle data was truncated" in line
    assert "an incomplete batch was dropped" in line and "3 of run no-such-run" in line


def test_end_of_input_after_a_sync_writes_nothing(tmp_path):
    helper = sender.SenderProcess()
    try:
        assert helper.sync() == []
    finally:
        helper.close()
    assert helper.proc.returncode == 0


def test_a_run_over_before_its_first_flush_starts_no_helper(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(
        "e", artifact_location=(tmp_path / "art").as_uri())).info.run_id
    buf = buffer.MetricsBuffer(client, run_id, uri, flush_seconds=3600)
    buf.pending = [("train/cost", 1.0 / s, 0, s) for s in range(1, 4)]
    buf.flush()
    assert sender.running() is None
    assert [m.step for m in client.get_metric_history(run_id, "train/cost")] == [1, 2, 3]


def test_a_run_expected_to_log_many_values_streams_them_through_the_helper(tmp_path, monkeypatch):
    from ffexp import Network, train
    from ffexp.job.data import load_dataset
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(
        "e", artifact_location=(tmp_path / "art").as_uri())).info.run_id
    monkeypatch.setattr(buffer, "IN_PROCESS_ROWS", 100)  # 23 values an epoch x 6 epochs
    monkeypatch.setattr(buffer, "BATCH_LIMIT", 40)
    d = load_dataset("moons")
    buf = buffer.MetricsBuffer(client, run_id, uri, flush_seconds=3600)
    result = train(Network([2, 16, 16, 1], seed=0), d.X_train, d.Y_train, "bce", epochs=6,
                   callbacks=[buf])
    assert buf.batches >= 2  # streamed during training, not one batch at the end
    buf.flush()
    helper = sender.running()
    assert helper is not None
    steps = [m.step for m in client.get_metric_history(run_id, "train/cost")]
    assert steps == [e.epoch for e in result.history] and steps[-1] == 6


def test_a_training_faster_than_the_store_waits_for_it_and_queues_a_few_batches(
        tmp_path, monkeypatch):
    """Values made faster than the store takes them (batches of 40 every other epoch of a
    0.5 ms epoch; a log_batch takes milliseconds): the training waits at an epoch's end while
    more than MAX_QUEUED batches are queued, so a run stopped early stores its queue at once;
    everything is stored in the end."""
    from ffexp import Callback, Network, train
    from ffexp.job.data import load_dataset
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(
        "e", artifact_location=(tmp_path / "art").as_uri())).info.run_id
    monkeypatch.setattr(buffer, "IN_PROCESS_ROWS", 100)
    monkeypatch.setattr(buffer, "BATCH_LIMIT", 40)
    buf = buffer.MetricsBuffer(client, run_id, uri, flush_seconds=3600)
    queued = []

    class Watch(Callback):
        def on_epoch_end(self, net, stats):
            queued.append(sum(not f.done() for f in buf._inflight))

    d = load_dataset("moons")
    result = train(Network([2, 16, 16, 1], seed=0), d.X_train, d.Y_train, "bce", epochs=300,
                   callbacks=[buf, Watch()])
    buf.flush()
    assert buf.batches > 100 and max(queued) == buffer.MAX_QUEUED, (buf.batches, max(queued))
    steps = [m.step for m in client.get_metric_history(run_id, "train/cost")]
    assert steps == [e.epoch for e in result.history]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _helper_of(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kid in _children(pid):
            try:
                if b"ffexp.tracking.sender" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    return kid
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError("the metrics helper did not start")


def _blocked_writing_a_pipe(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                if "pipe_write" in (task / "wchan").read_text():
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError("the run's writer thread never blocked on the helper's pipe")


@pytest.mark.slow
def test_sigkill_of_a_run_leaves_no_traceback_and_counts_the_lost_batch(tmp_path):
    """The real command: the helper is stopped so that the pipe fills and the run blocks in
    the middle of a batch; the run is SIGKILLed, then the helper resumes and reads the cut."""
    proc = subprocess.Popen([FFEXP, *FAST, "train.epochs=1000000", "tracking.flush_seconds=0.05",
                             "tracking.log_plots=false", "tracking.log_model=false"],
                            cwd=tmp_path, env=ffexp_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        helper = _helper_of(proc.pid, timeout=240)
        os.kill(helper, signal.SIGSTOP)
        _blocked_writing_a_pipe(proc.pid, timeout=240)  # the pipe is full, a batch half sent
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        os.kill(helper, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)  # EOF: the helper, holding stderr, is gone too
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"Traceback" not in err and b"UnpicklingError" not in err, err.decode()[-2000:]
    log = next(tmp_path.glob("outputs/*/*/ffexp.log")).read_text()
    assert "ffexp.tracking.sender: the training process went away" in log
    assert "an incomplete batch was dropped" in log
