"""The run's dataset as an MLflow dataset input, so the runs table's Dataset column and its
filter work: a metadata-only entity (no data is copied), logged with ``log_inputs``.

- name: the dataset's name (``moons``); digest: the first 12 hex digits of the SHA-256 of the
  split arrays as trained on (equal digests: the same numbers);
- source (type ``code``): the generator's name, its params and the data seed;
- schema: one double column per feature and per target;
- profile: task, features, outputs, classes, the split sizes, the rows in all.
"""

from __future__ import annotations

import hashlib
import json

CONTEXT = "train"  # the input's mlflow.data.context


def digest(dataset) -> str:
    h = hashlib.sha256()
    for a in (dataset.X_train, dataset.Y_train, dataset.X_val, dataset.Y_val, dataset.X_test,
              dataset.Y_test):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def profile(dataset, task: str) -> dict:
    splits = {"train": dataset.X_train.shape[1], "val": dataset.X_val.shape[1],
              "test": dataset.X_test.shape[1]}
    return {"task": task, "n_features": dataset.n_features, "n_outputs": dataset.n_outputs,
            "classes": len(dataset.classes), "splits": splits, "rows": sum(splits.values()),
            "standardized": "features" + (" and targets" if dataset.target_scaler else "")}


def dataset_input(dataset, task: str):
    """The DatasetInput entity of ``dataset`` (``task`` as resolved)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    columns = [{"type": "double", "name": str(n), "required": True}
               for n in (*dataset.feature_names, *dataset.target_names)]
    source = {"tags": {"generator": dataset.name, "seed": int(dataset.seed),
                       "params": {str(k): v for k, v in dict(dataset.params).items()}}}
    entity = Dataset(name=dataset.name, digest=digest(dataset), source_type="code",
                     source=json.dumps(source, default=str),
                     schema=json.dumps({"mlflow_colspec": columns}),
                     profile=json.dumps(profile(dataset, task)))
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", CONTEXT)])


#: how MLflow's SQL store reports an insert of a dataset the experiment already has: SQLite,
#: then PostgreSQL (which names the key, ``dataset_pk``)
_DUPLICATE = ("UNIQUE constraint failed: datasets.", "dataset_pk")


def log_dataset(client, run_id: str, dataset, task: str) -> None:
    """Log ``dataset`` as the run's input. MLflow's store looks the experiment's dataset up,
    then inserts it if it was not found; two jobs logging a dataset new to the experiment at
    the same moment (a joblib sweep's first jobs) both insert it, and the later insert fails
    on the datasets table's key, its transaction rolled back. Made again, the call finds the
    dataset the other job stored and links it."""
    inputs = [dataset_input(dataset, task)]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except Exception as err:
        if not any(s in str(err) for s in _DUPLICATE):
            raise
        client.log_inputs(run_id, datasets=inputs)
