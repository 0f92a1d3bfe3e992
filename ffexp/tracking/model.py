"""The trained network as run artifacts: ``model_npz/network.npz`` (``Network.load``, no
pickle) and an MLflow 3 LoggedModel (pyfunc, with a signature) named after the run
(``moons-relu-he-minibatch-s0``), its final train/test metrics linked to it.

Stored without pickle: the pyfunc model is logged from code (ffexp/tracking/model_code.py,
MLflow's models-from-code), whose ``NetworkModel`` reads the npz artifacts on loading.

The pyfunc model takes a DataFrame with one column per feature (named as in the dataset, in the
data's own units: the training split's standardization is applied inside) and returns a
DataFrame with one column per output: Ŷ = A[L] as ``Network.forward`` gives it (probabilities
for classification; for regression mapped back to the targets' units). Loading it needs ffexp
importable (the model class lives here); its requirements are listed explicitly, because
MLflow's requirement inference costs over a second per run.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

import mlflow.pyfunc


def _scaling(dataset) -> dict[str, np.ndarray]:
    """Means and scales of the training split's standardization (identity where there is none)."""
    n, k = dataset.n_features, dataset.n_outputs
    fs, ts = dataset.feature_scaler, dataset.target_scaler

    def of(scaler, attr, size, default):
        value = getattr(scaler, attr, None) if scaler is not None else None
        return np.full(size, default) if value is None else np.asarray(value, dtype=float)

    return {"feature_mean": of(fs, "mean_", n, 0.0), "feature_scale": of(fs, "scale_", n, 1.0),
            "target_mean": of(ts, "mean_", k, 0.0), "target_scale": of(ts, "scale_", k, 1.0)}


class NetworkModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: standardize the features, forward, un-standardize regression
    targets."""

    # the explicit signature is the contract; no validation from predict's type hints
    # (and no warning that there are none)
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        from ffexp.nn import Network
        self.net = Network.load(context.artifacts["network"])
        with np.load(context.artifacts["scaling"], allow_pickle=False) as f:
            self.scaling = {k: f[k] for k in f.files}
            self.features = [str(x) for x in f["features"]]
            self.outputs = [str(x) for x in f["outputs"]]

    def predict(self, context, model_input, params=None):
        import pandas as pd
        s = self.scaling
        X = np.asarray(model_input[self.features], dtype=float)          # (m, n)
        X = ((X - s["feature_mean"]) / s["feature_scale"]).T              # (n, m)
        Yhat = self.net.forward(X).T * s["target_scale"] + s["target_mean"]  # (m, k)
        return pd.DataFrame(Yhat, columns=self.outputs, index=getattr(model_input, "index", None))


@contextmanager
def _quiet():
    """MLflow's advice (type hints, an input example, models-from-code) and its download
    progress bars are noise on ffexp's console: the signature is given explicitly."""
    logger = logging.getLogger("mlflow")
    level, logger.level = logger.level, logging.ERROR
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def requirements() -> list[str]:
    """The model's pip requirements: the installed releases (read once per process)."""
    return list(_requirements())


@cache
def _requirements() -> tuple[str, ...]:
    import mlflow
    import pandas
    from importlib.metadata import version
    __version__ = version("ffexp")
    return (f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}",
            f"pandas=={pandas.__version__}", f"ffexp=={__version__}")


CODE = Path(__file__).with_name("model_code.py")


def model_name(text: str) -> str:
    """A LoggedModel name from a run's identity: MLflow refuses / : . % and quotes in it."""
    return re.sub(r"[/:.%\"'·\s]+", "-", text).strip("-") or "model"


def save_network(net, dataset, folder) -> dict:
    """Write ``network.npz`` and ``scaling.npz`` into ``folder``; returns what logging them as
    the run's model needs besides (``log_saved_network``): the feature and output names."""
    n, k = net.layer_sizes[0], net.layer_sizes[-1]
    features = list(dataset.feature_names) if dataset is not None else \
        [f"x{i}" for i in range(1, n + 1)]
    outputs = list(dataset.target_names) if dataset is not None else \
        [f"y{i}" for i in range(1, k + 1)]
    folder = Path(folder)
    net.save(folder / "network.npz")
    np.savez(folder / "scaling.npz", features=np.array(features), outputs=np.array(outputs),
             **(_scaling(dataset) if dataset is not None else _identity(n, k)))
    return {"features": [str(f) for f in features], "outputs": [str(o) for o in outputs],
            "signature": dataset is not None}


def _signature_of(names: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    return ModelSignature(Schema([ColSpec("double", n) for n in names["features"]]),
                          Schema([ColSpec("double", n) for n in names["outputs"]]))


def log_saved_network(client, run_id: str, uri: str, experiment_id: str, folder, names: dict,
                      step: int, name: str = "model", params: dict | None = None,
                      on_created=None, model_id: str | None = None) -> str:
    """Log the files ``save_network`` wrote in ``folder`` as the run's ``model_npz/network.npz``
    and pyfunc LoggedModel ``name``; returns the model's id. ``on_created(model_id)`` is called
    once the LoggedModel exists (ffexp-sync notes it, so that a sync made again after a crash
    completes that model instead of making a second one: ``model_id``)."""
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    from ffexp._compat.mlflow_artifacts import prime

    from .retry import call_with_retries
    npz, scal = Path(folder, "network.npz"), Path(folder, "scaling.npz")
    client.log_artifact(run_id, str(npz), "model_npz")
    if model_id is None:
        # The LoggedModel is created here, in our experiment and from our run: Model.log would
        # put it in the *fluent* experiment, and, given a run id, re-read every metric history
        # of the run (~0.2 s at 100 epochs, more with every epoch) to link the step's values.
        logged = client.create_logged_model(experiment_id, name=model_name(name),
                                            source_run_id=run_id, params=params)
        if on_created is not None:
            on_created(logged.model_id)
    else:
        logged = client.get_logged_model(model_id)
    model_id, model = logged.model_id, logged.name
    prime(client, model_id, logged.artifact_location)  # Model.log: no read of the model
    mlflow.set_tracking_uri(uri)
    with _quiet():  # MLflow's own client: retried here like ffexp's calls (same model id)
        call_with_retries(Model.log, artifact_path=None, name=model,
                          flavor=mlflow.pyfunc, model_id=model_id,
                          python_model=str(CODE),
                          artifacts={"network": str(npz), "scaling": str(scal)},
                          signature=_signature_of(names) if names.get("signature") else None,
                          pip_requirements=requirements(),
                          remote=uri.startswith(("http://", "https://")))
    client.log_outputs(run_id, [LoggedModelOutput(model_id, step)])
    return model_id


def log_network(client, run_id: str, uri: str, experiment_id: str, net, dataset,
                step: int, name: str = "model", params: dict | None = None) -> str:
    """Log network.npz and the pyfunc LoggedModel ``name`` of the run (from code, no pickle,
    no requirement inference); returns the model's id."""
    with tempfile.TemporaryDirectory(prefix="ffexp-model-") as tmp:
        names = save_network(net, dataset, tmp)
        return log_saved_network(client, run_id, uri, experiment_id, tmp, names, step, name,
                                 params)


def _identity(n: int, k: int) -> dict[str, np.ndarray]:
    return {"feature_mean": np.zeros(n), "feature_scale": np.ones(n),
            "target_mean": np.zeros(k), "target_scale": np.ones(k)}
