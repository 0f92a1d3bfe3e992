"""Test-only faults for tests/faults, injected from outside ffexp.

Python imports ``sitecustomize`` at start-up from sys.path; the fault tests put this folder on
PYTHONPATH of the ``ffexp`` command they run, so every process of it (the launcher, joblib
workers) gets the faults and nothing in ffexp knows about them. Each is switched on by an
environment variable:

- ``FFEXP_TEST_NAN_DATASET=1``: registers the dataset ``nan_moons`` (ffexp.data.register_dataset):
  make_moons with one NaN feature value, knobs n_samples and noise like moons.
- ``FFEXP_TEST_RAISE=<seed>:<epoch>``: the job whose ``seed`` is <seed> raises
  ``RuntimeError("injected fault at epoch <epoch>")`` at the end of that epoch, from the
  validation callback (the first one), so the epochs before it are logged and that one is not.
"""

import os

if os.environ.get("FFEXP_TEST_NAN_DATASET"):
    import numpy as np
    from sklearn.datasets import make_moons

    from ffexp.data import DatasetSpec, Raw, register_dataset

    def _nan_moons(random_state, *, n_samples, noise):
        X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
        X[3, 1] = np.nan
        return Raw(X, y, ["x1", "x2"], ["0", "1"])

    register_dataset("nan_moons", DatasetSpec("binary", _nan_moons,
                                              {"n_samples": 200, "noise": 0.1}))

if os.environ.get("FFEXP_TEST_RAISE"):
    from ffexp import app

    _seed, _epoch = (int(v) for v in os.environ["FFEXP_TEST_RAISE"].split(":"))
    _real = app.Validation.on_epoch_end

    def _on_epoch_end(self, net, stats):
        _real(self, net, stats)
        if self.job.settings.seed == _seed and stats.epoch == _epoch:
            raise RuntimeError(f"injected fault at epoch {_epoch}")

    app.Validation.on_epoch_end = _on_epoch_end
