"""Test-only faults for tests/faults, injected from outside ffexp.

Python imports ``sitecustomize`` at start-up from sys.path; the fault tests put this folder on
PYTHONPATH of the ``ffexp`` command they run, so every process of it (the launcher, joblib
workers) gets the faults and nothing in ffexp knows about them. Each is switched on by an
environment variable:

- ``FFEXP_TEST_NAN_DATASET=1``: registers the dataset ``nan_moons`` (ffexp.job.data.register_dataset):
  make_moons with one NaN feature value, knobs n_samples and noise like moons.
- ``FFEXP_TEST_RAISE=<seed>:<epoch>``: the job whose ``seed`` is <seed> raises
  ``RuntimeError("injected fault at epoch <epoch>")`` at the end of that epoch, from the
  validation callback (the first one), so the epochs before it are logged and that one is not.
- ``FFEXP_TEST_NOW=<ISO time>``: Hydra's ``${now:...}`` resolver sees that time, so that two
  commands compute the same default ``hydra.sweep.dir`` (two sweeps "in the same second").
- ``FFEXP_TEST_FOREIGN_HANDOFF=1``: before each job is prepared, ``<sweep dir>/mlflow_sweep.json``
  is rewritten as another sweep would (another sweep id and parent run), as if a second sweep
  had taken the directory meanwhile (e.g. from another host, where no lock is shared).
- ``FFEXP_TEST_SENDER_SIGKILL=<n>``: the metrics helper process (``python -m
  ffexp.tracking.sender``) stores <n> batches, then SIGKILLs itself when the next one comes,
  as ``kill -9`` of the helper mid-run would: that batch and whatever is queued in its pipe
  are lost.
- ``FFEXP_TEST_SKIP_PREFLIGHT=1``: ffexp's check of the store before training passes, as if the
  store had answered it and gone away right after (a single run then meets the outage when it
  creates its run).
"""

import os

if os.environ.get("FFEXP_TEST_NAN_DATASET"):
    import numpy as np
    from sklearn.datasets import make_moons

    from ffexp.job.data import DatasetSpec, Raw, register_dataset

    def _nan_moons(random_state, *, n_samples, noise):
        X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
        X[3, 1] = np.nan
        return Raw(X, y, ["x1", "x2"], ["0", "1"])

    register_dataset("nan_moons", DatasetSpec("binary", _nan_moons,
                                              {"n_samples": 200, "noise": 0.1}))

if os.environ.get("FFEXP_TEST_RAISE"):
    from ffexp.job import app

    _seed, _epoch = (int(v) for v in os.environ["FFEXP_TEST_RAISE"].split(":"))
    _real = app.Validation.on_epoch_end

    def _on_epoch_end(self, net, stats):
        _real(self, net, stats)
        if self.job.settings.seed == _seed and stats.epoch == _epoch:
            raise RuntimeError(f"injected fault at epoch {_epoch}")

    app.Validation.on_epoch_end = _on_epoch_end

if os.environ.get("FFEXP_TEST_NOW"):
    from datetime import datetime as _datetime

    import hydra.core.utils as _hydra_utils

    _FIXED = _datetime.fromisoformat(os.environ["FFEXP_TEST_NOW"])

    class _FixedNow(_datetime):
        @classmethod
        def now(cls, tz=None):
            return _FIXED

    _hydra_utils.datetime = _FixedNow

if os.environ.get("FFEXP_TEST_FOREIGN_HANDOFF"):
    import json
    from pathlib import Path

    from ffexp.launch import main as _entry

    _real_prepare = _entry.prepare

    def _prepare(settings):
        from hydra.core.hydra_config import HydraConfig
        path = Path(HydraConfig.get().sweep.dir) / "mlflow_sweep.json"
        record = json.loads(path.read_text())
        record.update(sweep_uid="someone-elses-sweep", parent_run_id="0" * 32)
        path.write_text(json.dumps(record))
        return _real_prepare(settings)

    _entry.prepare = _prepare

if os.environ.get("FFEXP_TEST_SENDER_SIGKILL") and \
        getattr(__import__("sys"), "orig_argv", [])[-1:] == ["ffexp.tracking.sender"]:
    import signal as _signal

    import ffexp.tracking.buffer as _buffer

    _batches = int(os.environ["FFEXP_TEST_SENDER_SIGKILL"])
    _stored = [0]
    _store_rows = _buffer.store_rows

    def _store_then_die(client, uri, run_id, rows):
        if _stored[0] >= _batches:
            os.kill(os.getpid(), _signal.SIGKILL)
        _stored[0] += 1
        return _store_rows(client, uri, run_id, rows)

    _buffer.store_rows = _store_then_die

if os.environ.get("FFEXP_TEST_SKIP_PREFLIGHT"):
    # the store answered the check before training and went away right after it (a server
    # stopped between ffexp's check and the job's first call)
    import ffexp.tracking.preflight as _preflight

    _preflight.check_store = lambda uri: None
