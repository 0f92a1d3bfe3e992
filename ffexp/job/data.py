"""scikit-learn datasets -> column-major train / validation / test splits.

The path of :func:`load_dataset` (and of :func:`from_arrays`, which runs it on given arrays):

1. generate or load rows ``X`` (m × n) and labels ``y``; a generated dataset takes its
   ``random_state`` from ``stream(seed, "data")``, never from the global ``np.random``;
2. refuse non-finite features or targets (ValueError);
3. encode the labels for the output layer (table below);
4. split into train / val / test with ``train_test_split``, stratified by class for binary and
   multiclass (not for multilabel or regression), random states from the same "data" stream;
   ``val_fraction=0`` leaves no validation split (X_val is (n_features, 0));
5. with ``standardize`` (the default), standardize the features with a StandardScaler fitted
   on the training split only (without, ``feature_scaler`` is the identity and the features
   stay raw) and, for regression when ``standardize_targets``, the targets likewise. The target
   scaler is kept in ``Dataset.target_scaler``: metrics computed on these arrays are in
   standardized units, and ``Dataset.targets_in_original_units`` maps a (k, m) array back;
6. transpose at the boundary: X is (n_features, m), Y is (n_outputs, m), float64, C-contiguous.

| task        | Y rows (n_outputs) | encoding                                      |
|-------------|--------------------|-----------------------------------------------|
| binary      | 1                  | 0/1; 1 means ``classes[1]``                   |
| multiclass  | c = len(classes)   | one-hot; row k is 1 where the label is classes[k] |
| multilabel  | c = len(classes)   | multi-hot, as generated                       |
| regression  | n_targets          | real values                                   |

Only scikit-learn's bundled or generated data: nothing is downloaded.
"""

from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from ffexp.nn import TASKS, stream
from ffexp.nn.checks import one_of, positive_int

if TYPE_CHECKING:   # scikit-learn is imported where a dataset is loaded: a sweep's launching
    from sklearn.preprocessing import StandardScaler   # process never loads one (~0.9 s)


class Raw(NamedTuple):
    """What a loader returns: X (m × n); y (m,) class labels or targets, or (m, k) multi-hot
    labels / targets; names of the features and of the classes (indexed by label value) or
    targets, when known."""
    X: np.ndarray
    y: np.ndarray
    feature_names: Sequence[str] | None = None
    label_names: Sequence[str] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    ``loader(random_state, **params) -> Raw``; the keys of ``defaults`` are the knobs a user may
    override (none for the bundled datasets). ``task`` is the task under the defaults;
    ``task_rule(params)``, when set, derives it from the resolved params instead.
    """
    task: str
    loader: Callable[..., Raw]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    task_rule: Callable[[Mapping[str, Any]], str] | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        """The param names a user may set."""
        return tuple(self.defaults)

    def task_for(self, params: Mapping[str, Any]) -> str:
        return self.task_rule(params) if self.task_rule else self.task


@dataclass(frozen=True, eq=False)
class Dataset:
    """Column-major splits: X_* is (n_features, m_*), Y_* is (n_outputs, m_*), float64."""
    name: str
    task: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]   # one name per row of Y
    classes: tuple[str, ...]        # class labels by encoded index; () for regression
    feature_scaler: StandardScaler  # fitted on the training split only (identity: raw features)
    target_scaler: StandardScaler | None  # regression with standardize_targets, else None
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.Y_train.shape[0]

    @property
    def has_validation(self) -> bool:
        """False with ``val_fraction=0`` (X_val and Y_val have no columns)."""
        return self.X_val.shape[1] > 0

    def targets_in_original_units(self, Y: np.ndarray) -> np.ndarray:
        """(k, m) standardized regression targets or outputs -> (k, m) in the data's units."""
        if self.target_scaler is None:
            return np.asarray(Y, dtype=np.float64)
        return np.ascontiguousarray(self.target_scaler.inverse_transform(Y.T).T)


# --- loaders: (random_state, **knobs) -> Raw -------------------------------------------

def _sklearn(name: str) -> Callable:
    """``sklearn.datasets.<name>``, imported when first called."""
    def call(*args: Any, **kwargs: Any):
        return getattr(importlib.import_module("sklearn.datasets"), name)(*args, **kwargs)
    call.__name__ = name
    return call


def _make(make: Callable) -> Callable[..., Raw]:
    """A loader for a scikit-learn generator ``make(..., random_state)`` returning (X, y)."""
    def loader(random_state: int, **params: Any) -> Raw:
        return Raw(*make(**params, random_state=random_state))
    loader.__name__ = f"generated_{make.__name__}"
    return loader


def _xor(random_state: int, *, n_samples: int, noise: float) -> Raw:
    """Equal shares of 4 Gaussian clusters (std ``noise``) at (±1, ±1); label 1 where the
    signs of the two centre coordinates differ (XOR)."""
    n_samples = positive_int("n_samples", n_samples)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < np.inf:
        raise ValueError(f"noise must be a non-negative finite number, got {noise!r}")
    rng = np.random.default_rng(random_state)
    corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    which = rng.permutation(np.arange(n_samples) % 4)
    X = corners[which] + noise * rng.standard_normal((n_samples, 2))
    y = (corners[which, 0] * corners[which, 1] < 0).astype(np.int64)
    return Raw(X, y)


def _bundled(load: Callable) -> Callable[[int], Raw]:
    """A loader for a dataset bundled with scikit-learn: no knobs, random_state unused."""
    def loader(random_state: int) -> Raw:
        b = load()
        labels = b.get("target_names")
        return Raw(b.data, b.target, list(b.feature_names),
                   None if labels is None else [str(s) for s in labels])
    loader.__name__ = f"bundled_{load.__name__}"
    return loader


def _classes_rule(params: Mapping[str, Any]) -> str:
    """make_classification: n_classes == 2 -> binary, otherwise multiclass."""
    return "binary" if params["n_classes"] == 2 else "multiclass"


#: name -> spec. Generated data: knobs (and defaults) as in the matching sklearn make_* function.
DATASETS: dict[str, DatasetSpec] = {
    "moons": DatasetSpec("binary", _make(_sklearn("make_moons")),
                         {"n_samples": 400, "noise": 0.2}),
    "circles": DatasetSpec("binary", _make(_sklearn("make_circles")),
                           {"n_samples": 400, "noise": 0.1, "factor": 0.5}),
    "blobs": DatasetSpec("multiclass", _make(_sklearn("make_blobs")),
                         {"n_samples": 400, "centers": 3, "n_features": 2, "cluster_std": 1.0}),
    "xor": DatasetSpec("binary", _xor, {"n_samples": 400, "noise": 0.3}),
    "classification": DatasetSpec(
        "binary", _make(_sklearn("make_classification")),
        {"n_samples": 500, "n_features": 10, "n_informative": 4, "n_redundant": 2,
         "n_classes": 2, "n_clusters_per_class": 2, "class_sep": 1.0, "flip_y": 0.01},
        task_rule=_classes_rule),
    "iris": DatasetSpec("multiclass", _bundled(_sklearn("load_iris"))),
    "wine": DatasetSpec("multiclass", _bundled(_sklearn("load_wine"))),
    "digits": DatasetSpec("multiclass", _bundled(_sklearn("load_digits"))),
    "breast_cancer": DatasetSpec("binary", _bundled(_sklearn("load_breast_cancer"))),
    "multilabel": DatasetSpec("multilabel", _make(_sklearn("make_multilabel_classification")),
                              {"n_samples": 500, "n_features": 10, "n_classes": 4, "n_labels": 2}),
    "regression": DatasetSpec("regression", _make(_sklearn("make_regression")),
                              {"n_samples": 400, "n_features": 10, "n_informative": 5,
                               "n_targets": 1, "noise": 10.0}),
    "friedman1": DatasetSpec("regression", _make(_sklearn("make_friedman1")),
                             {"n_samples": 400, "n_features": 10, "noise": 1.0}),
    "diabetes": DatasetSpec("regression", _bundled(_sklearn("load_diabetes"))),
    "linnerud": DatasetSpec("regression", _bundled(_sklearn("load_linnerud"))),
}


def register_dataset(name: str, spec: DatasetSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to DATASETS under ``name`` (e.g. a test's hand-made data)."""
    if name in DATASETS and not replace:
        raise ValueError(f"dataset {name!r} is already registered; pass replace=True")
    one_of("task", spec.task, TASKS)
    DATASETS[name] = spec


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec's defaults overridden by ``params``; an unknown key -> ValueError."""
    spec = DATASETS[one_of("dataset", name, DATASETS)]
    for key in params or {}:
        if key not in spec.accepted:
            raise ValueError(f"unknown param {key!r} (= {params[key]!r}) for dataset {name!r}; "
                             f"accepted params: "
                             f"{sorted(spec.accepted) or 'none'}")
    return {**spec.defaults, **(params or {})}


def dataset_task(name: str, params: Mapping[str, Any] | None = None) -> str:
    """The task of dataset ``name`` under ``params`` (e.g. classification with n_classes=3)."""
    return DATASETS[one_of("dataset", name, DATASETS)].task_for(resolve_params(name, params))


def load_dataset(name: str, *, seed: int = 0, params: Mapping[str, Any] | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.2,
                 standardize: bool = True, standardize_targets: bool = True) -> Dataset:
    """Generate or load dataset ``name``, then split, scale, encode and transpose it."""
    resolved = resolve_params(name, params)
    spec = DATASETS[name]
    _check_fractions(val_fraction, test_fraction)
    generate_state, split_states = _states(seed)
    try:
        raw = spec.loader(generate_state, **resolved)
    except (ValueError, TypeError) as err:
        raise ValueError(f"dataset {name!r} with params {resolved}: {err}") from err
    return _build(name, spec.task_for(resolved), raw, seed, split_states, val_fraction,
                  test_fraction, (standardize, standardize_targets), resolved)


def from_arrays(X: np.ndarray, y: np.ndarray, task: str, *, name: str = "arrays", seed: int = 0,
                val_fraction: float = 0.2, test_fraction: float = 0.2, standardize: bool = True,
                standardize_targets: bool = True, feature_names: Sequence[str] | None = None,
                label_names: Sequence[str] | None = None) -> Dataset:
    """The same split / scale / encode / validation path on given rows.

    X is (m, n) row-major as scikit-learn has it; y is (m,) labels or targets, or (m, k)
    multi-hot labels / targets. ``label_names``: class names indexed by integer label value
    (labels 0..c-1), or the names of the k regression targets / multilabel columns.
    """
    one_of("task", task, TASKS)
    _check_fractions(val_fraction, test_fraction)
    _, split_states = _states(seed)
    return _build(name, task, Raw(X, y, feature_names, label_names), seed, split_states,
                  val_fraction, test_fraction, (standardize, standardize_targets), {})


# --- the shared path -----------------------------------------------------------------------

def _states(seed: int) -> tuple[int, tuple[int, int]]:
    """Int random states from ``stream(seed, "data")``: (generation, (test split, val split))."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    a, b, c = (int(s) for s in stream(int(seed), "data").integers(0, 2**31 - 1, size=3))
    return a, (b, c)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, value, low in (("val_fraction", val_fraction, 0.0),
                            ("test_fraction", test_fraction, None)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not (0.0 < value < 1.0 or value == low):
            accepted = "[0, 1) (0: no validation split)" if low == 0.0 else "(0, 1)"
            raise ValueError(f"{key} must be a number in {accepted}, got {value!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training data, got "
                         f"val_fraction={val_fraction!r} + test_fraction={test_fraction!r}")


def _check_rows(name: str, X: np.ndarray, y: np.ndarray) -> None:
    if X.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"dataset {name!r}: X must be (m, n) and y (m,) or (m, k) with the "
                         f"same m, got X {X.shape} and y {y.shape}")
    for what, arr in (("features", X), ("targets", y)):
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"dataset {name!r}: {what} contain {bad} non-finite value(s) "
                             f"(NaN or inf); clean the data")


def _encode(name: str, task: str, y: np.ndarray, label_names: Sequence[str] | None):
    """Labels -> (Y (m, n_outputs) float64, stratify (m,) or None, classes, target_names)."""
    if task == "regression":
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float64)
        names = tuple(label_names or (f"y{k}" for k in range(Y.shape[1])))
        return Y, None, (), names
    if task == "multilabel":
        if y.ndim != 2 or not np.isin(y, (0, 1)).all():
            raise ValueError(f"dataset {name!r}: multilabel y must be (m, c) with values in "
                             f"{{0, 1}}, got shape {y.shape}")
        classes = tuple(label_names or (str(k) for k in range(y.shape[1])))
        return y.astype(np.float64), None, classes, classes
    values, index = np.unique(y, return_inverse=True)
    names = tuple(str(label_names[int(v)]) if label_names is not None else str(v)
                  for v in values)
    if y.ndim != 1 or len(values) < 2 or (task == "binary" and len(values) != 2):
        raise ValueError(f"dataset {name!r}: task {task!r} needs y of shape (m,) with "
                         f"{'2' if task == 'binary' else '2 or more'} classes, got shape "
                         f"{y.shape} with classes {list(names)[:10]}")
    if task == "binary":
        return index.reshape(-1, 1).astype(np.float64), index, names, names[1:]
    return np.eye(len(values))[index], index, names, names


def _split(name: str, m: int, stratify: np.ndarray | None, states: tuple[int, int],
           val_fraction: float, test_fraction: float):
    """Row indices (train, val, test) of sizes m − val − test, round(val_fraction·m) and
    round(test_fraction·m) (at least 1 each, but none for val_fraction=0); the test rows are
    drawn first."""
    from sklearn.model_selection import train_test_split
    rows = np.arange(m)
    n_val, n_test = (max(1, round(f * m)) for f in (val_fraction, test_fraction))
    try:
        rest, test = train_test_split(rows, test_size=n_test, random_state=states[0],
                                      stratify=stratify)
        if val_fraction == 0:
            return rest, rest[:0], test
        train, val = train_test_split(rest, test_size=n_val, random_state=states[1],
                                      stratify=None if stratify is None else stratify[rest])
    except ValueError as err:
        raise ValueError(f"dataset {name!r} ({m} examples) cannot be split with val_fraction="
                         f"{val_fraction!r}, test_fraction={test_fraction!r}: {err}") from err
    return train, val, test


def _build(name: str, task: str, raw: Raw, seed: int, states: tuple[int, int],
           val_fraction: float, test_fraction: float, standardize: tuple[bool, bool],
           params: Mapping[str, Any]) -> Dataset:
    """``standardize``: (the features, regression targets)."""
    from sklearn.preprocessing import StandardScaler
    X, y = np.asarray(raw.X, dtype=np.float64), np.asarray(raw.y)
    _check_rows(name, X, y)
    Y, stratify, classes, target_names = _encode(name, task, y, raw.label_names)
    parts = _split(name, X.shape[0], stratify, states, val_fraction, test_fraction)
    features, standardize_targets = standardize
    # without standardization the scaler is the identity, so that what maps the data's own
    # units to the network's inputs (the pyfunc model) needs no special case
    x_scaler = StandardScaler(with_mean=features, with_std=features).fit(X[parts[0]])
    y_scaler = (StandardScaler().fit(Y[parts[0]])
                if task == "regression" and standardize_targets else None)

    def column_major(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rows.size == 0:   # no validation split: (n, 0) arrays (scikit-learn refuses them)
            return np.empty((X.shape[1], 0)), np.empty((Y.shape[1], 0))
        Yr = Y[rows] if y_scaler is None else y_scaler.transform(Y[rows])
        return (np.ascontiguousarray(x_scaler.transform(X[rows]).T, dtype=np.float64),
                np.ascontiguousarray(Yr.T, dtype=np.float64))

    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = (column_major(rows) for rows in parts)
    names = tuple(str(f) for f in (raw.feature_names or [f"x{j}" for j in range(X.shape[1])]))
    return Dataset(name, task, Xtr, Ytr, Xva, Yva, Xte, Yte, names, target_names, classes,
                   x_scaler, y_scaler, int(seed), dict(params))
