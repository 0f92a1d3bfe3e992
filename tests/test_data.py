"""ffexp.job.data: every registered dataset, the split / scale / encode path, and its errors."""

import numpy as np
import pytest
from sklearn import datasets as skd

from ffexp.job.data import (DATASETS, DatasetSpec, Raw, dataset_task, from_arrays, load_dataset,
                        register_dataset)

NAMES = sorted(DATASETS)

#: name -> (task, n_features, n_outputs, total examples) under the default params
EXPECTED = {
    "moons": ("binary", 2, 1, 400),
    "circles": ("binary", 2, 1, 400),
    "blobs": ("multiclass", 2, 3, 400),
    "xor": ("binary", 2, 1, 400),
    "classification": ("binary", 10, 1, 500),
    "iris": ("multiclass", 4, 3, 150),
    "wine": ("multiclass", 13, 3, 178),
    "digits": ("multiclass", 64, 10, 1797),
    "breast_cancer": ("binary", 30, 1, 569),
    "multilabel": ("multilabel", 10, 4, 500),
    "regression": ("regression", 10, 1, 400),
    "friedman1": ("regression", 10, 1, 400),
    "diabetes": ("regression", 10, 1, 442),
    "linnerud": ("regression", 3, 3, 20),
}
BUNDLED = {"iris", "wine", "digits", "breast_cancer", "diabetes", "linnerud"}
CLASSIFIERS = [n for n in NAMES if EXPECTED[n][0] in ("binary", "multiclass")]


def _splits(d):
    return [(d.X_train, d.Y_train), (d.X_val, d.Y_val), (d.X_test, d.Y_test)]


def _original_rows(d):
    """All examples in the data's units, (m, n) rows sorted: the split and scaling undone."""
    rows = np.vstack([d.feature_scaler.inverse_transform(X.T) for X, _ in _splits(d)])
    return rows[np.lexsort(rows.T[::-1])]


def test_every_dataset_has_an_expectation():
    assert set(EXPECTED) == set(DATASETS)


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_task_and_column_major_shapes(name):
    task, n_features, n_outputs, m = EXPECTED[name]
    d = load_dataset(name)
    assert (d.name, d.task, d.n_features, d.n_outputs) == (name, task, n_features, n_outputs)
    assert dataset_task(name) == task == DATASETS[name].task
    assert len(d.feature_names) == n_features and len(d.target_names) == n_outputs
    for X, Y in _splits(d):
        assert X.shape == (n_features, X.shape[1]) and Y.shape == (n_outputs, X.shape[1])
        for arr in (X, Y):
            assert arr.dtype == np.float64 and arr.flags.c_contiguous
            assert np.all(np.isfinite(arr))
    sizes = [X.shape[1] for X, _ in _splits(d)]
    assert sum(sizes) == m
    assert sizes[1] == sizes[2] == round(0.2 * m)  # default fractions 0.2 / 0.2 of all m


@pytest.mark.parametrize("name", NAMES)
def test_label_encoding(name):
    d = load_dataset(name)
    Y = np.hstack([Y for _, Y in _splits(d)])
    if d.task == "regression":
        assert d.classes == () and d.target_scaler is not None
        return
    assert set(np.unique(Y)) == {0.0, 1.0}
    if d.task == "binary":
        assert Y.shape[0] == 1 and len(d.classes) == 2 and d.target_names == d.classes[1:]
    elif d.task == "multiclass":
        assert np.all(Y.sum(axis=0) == 1)            # one-hot columns
        assert np.all(d.Y_train.sum(axis=1) > 0)     # every class in the training split
        assert d.target_names == d.classes and len(d.classes) == Y.shape[0]
    else:  # multilabel: multi-hot, some examples with several labels
        assert Y.sum(axis=0).max() >= 2


def test_bundled_labels_keep_their_names():
    d = load_dataset("breast_cancer")  # sklearn: 0 = malignant, 1 = benign
    assert d.classes == ("malignant", "benign") and d.target_names == ("benign",)
    assert int(np.hstack([Y for _, Y in _splits(d)]).sum()) == 357  # benign count in sklearn
    assert load_dataset("iris").classes == ("setosa", "versicolor", "virginica")
    assert load_dataset("linnerud").target_names == ("Weight", "Waist", "Pulse")


@pytest.mark.parametrize("name", NAMES)
def test_same_arguments_give_bit_identical_arrays(name):
    a, b = load_dataset(name, seed=3), load_dataset(name, seed=3)
    for (Xa, Ya), (Xb, Yb) in zip(_splits(a), _splits(b)):
        assert Xa.tobytes() == Xb.tobytes() and Ya.tobytes() == Yb.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_dataset_seed_changes_generation_and_split(name):
    a, b = load_dataset(name, seed=0), load_dataset(name, seed=1)
    assert not np.array_equal(a.X_test, b.X_test)  # the split differs for every dataset
    same_examples = np.allclose(_original_rows(a), _original_rows(b))
    assert same_examples == (name in BUNDLED)      # generated data differs, bundled does not


def test_global_random_state_is_neither_used_nor_changed():
    saved = np.random.get_state()
    try:
        np.random.seed(1)
        a = load_dataset("xor")
        assert np.random.get_state()[2] == 624  # MT19937 position just after seed(1): no draw
        np.random.seed(2)
        b = load_dataset("xor")
    finally:
        np.random.set_state(saved)
    assert np.array_equal(a.X_train, b.X_train)


@pytest.mark.parametrize("name", NAMES)
def test_features_scaled_with_training_statistics_only(name):
    d = load_dataset(name)
    varying = d.feature_scaler.scale_ != 1.0  # constant training features are left unscaled
    np.testing.assert_allclose(d.X_train.mean(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(d.X_train.std(axis=1)[varying], 1.0, rtol=1e-10)
    # fitted on all data, the pooled mean would be 0 to rounding: it is not
    pooled = np.hstack([X for X, _ in _splits(d)]).mean(axis=1)
    assert np.abs(pooled).max() > 1e-6


def test_scaler_statistics_equal_a_hand_fit_on_the_training_rows():
    rng = np.random.default_rng(7)
    m = 200
    X = np.column_stack([np.arange(m, dtype=float), rng.normal(5.0, 3.0, m)])  # col 0 = row id
    d = from_arrays(X, rng.integers(0, 2, m), "binary", seed=4)
    ids = np.rint(d.feature_scaler.inverse_transform(d.X_train.T)[:, 0]).astype(int)
    train_rows = X[ids]
    np.testing.assert_allclose(d.feature_scaler.mean_, train_rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(d.feature_scaler.scale_, train_rows.std(axis=0), rtol=1e-12)
    assert not np.allclose(d.feature_scaler.mean_, X.mean(axis=0), rtol=1e-6)
    val_ids = np.rint(d.feature_scaler.inverse_transform(d.X_val.T)[:, 0]).astype(int)
    expected_val = (X[val_ids] - train_rows.mean(axis=0)) / train_rows.std(axis=0)
    np.testing.assert_allclose(d.X_val, expected_val.T, rtol=1e-12, atol=1e-12)


def test_regression_targets_standardized_on_train_and_invertible():
    raw = skd.load_diabetes().target
    d = load_dataset("diabetes")
    np.testing.assert_allclose(d.Y_train.mean(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(d.Y_train.std(axis=1), 1.0, rtol=1e-10)
    back = np.hstack([d.targets_in_original_units(Y) for _, Y in _splits(d)])
    np.testing.assert_allclose(np.sort(back[0]), np.sort(raw), rtol=1e-12)
    plain = load_dataset("diabetes", standardize_targets=False)
    assert plain.target_scaler is None
    assert np.array_equal(np.sort(np.hstack([Y for _, Y in _splits(plain)])[0]), np.sort(raw))
    np.testing.assert_allclose(plain.X_train, d.X_train)  # features unaffected


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_stratification_keeps_class_proportions(name):
    d = load_dataset(name)
    counts = [Y.sum(axis=1) if Y.shape[0] > 1 else np.array([(Y == 0).sum(), Y.sum()])
              for _, Y in _splits(d)]
    share = sum(counts) / sum(c.sum() for c in counts)
    for c in counts:  # each split within 2 examples per class of the overall proportions
        assert np.all(np.abs(c - share * c.sum()) <= 2.0)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_split_of_an_imbalanced_set_is_exact(seed):
    # 100 examples, 10 positive; test 20 -> 2 positive, val 20 of 80 -> 2, train 60 -> 6.
    # A random unstratified split hits exactly 2/2/6 with probability ~0.1 per seed.
    y = np.r_[np.zeros(90), np.ones(10)]
    X = np.arange(100.0).reshape(-1, 1)
    d = from_arrays(X, y, "binary", seed=seed)
    assert [int(Y.sum()) for _, Y in _splits(d)] == [6, 2, 2]


def test_fractions_set_the_split_sizes():
    d = load_dataset("moons", val_fraction=0.1, test_fraction=0.3)
    assert [X.shape[1] for X, _ in _splits(d)] == [240, 40, 120]


def test_classification_task_follows_n_classes():
    d = load_dataset("classification", params={"n_classes": 3})
    assert d.task == dataset_task("classification", {"n_classes": 3}) == "multiclass"
    assert d.n_outputs == 3 and np.all(np.hstack([Y for _, Y in _splits(d)]).sum(axis=0) == 1)


def test_params_override_defaults():
    d = load_dataset("regression", params={"n_samples": 50, "n_features": 3, "n_targets": 2})
    assert (d.n_features, d.n_outputs, sum(X.shape[1] for X, _ in _splits(d))) == (3, 2, 50)
    assert d.params["n_samples"] == 50 and d.params["noise"] == 10.0


def test_unknown_param_names_key_dataset_and_accepted_keys():
    with pytest.raises(ValueError, match=r"'nosie'.*'moons'.*\['n_samples', 'noise'\]"):
        load_dataset("moons", params={"nosie": 0.1})
    with pytest.raises(ValueError, match=r"'n_samples'.*'iris'.*none"):
        load_dataset("iris", params={"n_samples": 10})
    with pytest.raises(ValueError, match=r"'random_state'"):
        load_dataset("moons", params={"random_state": 1})


@pytest.mark.parametrize("name,params,words", [
    ("moons", {"n_samples": -5}, ["n_samples", "-5", "moons"]),
    ("xor", {"noise": -1.0}, ["noise", "-1.0", "xor"]),
    ("xor", {"n_samples": 0}, ["n_samples", "0", "xor"]),
])
def test_bad_param_values_are_refused_by_name(name, params, words):
    with pytest.raises(ValueError) as err:
        load_dataset(name, params=params)
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("val,test,key", [
    (1.0, 0.2, "val_fraction"), (0.2, 0.0, "test_fraction"), (-0.1, 0.2, "val_fraction"),
    (0.2, 1.0, "test_fraction"), (float("nan"), 0.2, "val_fraction"), ("0.2", 0.2, "val_fraction"),
    (0.5, 0.5, "test_fraction"), (0.7, 0.4, "val_fraction"),
])
def test_bad_fractions_name_key_and_value(val, test, key):
    with pytest.raises(ValueError, match=key) as err:
        load_dataset("moons", val_fraction=val, test_fraction=test)
    assert repr(val if key == "val_fraction" else test) in str(err.value)


@pytest.mark.parametrize("name", ["moons", "iris", "multilabel", "diabetes"])
def test_val_fraction_zero_leaves_no_validation_split(name):
    """The test split is the same; the examples validation would have had are trained on."""
    split = load_dataset(name)
    whole = load_dataset(name, val_fraction=0)
    assert not whole.has_validation and split.has_validation
    assert whole.X_val.shape == (split.n_features, 0) and whole.Y_val.shape == (split.n_outputs, 0)
    assert whole.X_train.shape[1] == split.X_train.shape[1] + split.X_val.shape[1]
    raw = load_dataset(name, val_fraction=0, standardize=False)
    np.testing.assert_allclose(raw.targets_in_original_units(raw.Y_test),  # the same test
                               split.targets_in_original_units(split.Y_test), rtol=1e-12)
    np.testing.assert_allclose(raw.X_test, split.feature_scaler.inverse_transform(
        split.X_test.T).T, rtol=1e-12, atol=1e-12)


def test_unknown_dataset_task_and_seed_are_refused():
    with pytest.raises(ValueError, match=r"'mnist'.*'moons'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"'ordinal'"):
        from_arrays(np.zeros((10, 2)), np.zeros(10), "ordinal")
    with pytest.raises(ValueError, match=r"seed.*-1"):
        load_dataset("moons", seed=-1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused(bad):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    X[17, 1] = bad
    with pytest.raises(ValueError, match=r"features contain 1 non-finite"):
        from_arrays(X, y, "binary")
    with pytest.raises(ValueError, match=r"targets contain 1 non-finite"):
        from_arrays(np.ones((60, 3)), np.where(np.arange(60) == 5, bad, 1.0), "regression")


def test_a_registered_dataset_goes_through_the_same_checks():
    def poisoned(random_state, *, n_samples):
        X = np.random.default_rng(random_state).normal(size=(n_samples, 2))
        X[3, 0] = np.nan
        return Raw(X, np.arange(n_samples) % 2)

    spec = DatasetSpec("binary", poisoned, {"n_samples": 40})
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("moons", spec)
    try:
        register_dataset("poisoned", spec)
        with pytest.raises(ValueError, match=r"'poisoned'.*1 non-finite"):
            load_dataset("poisoned")
    finally:
        DATASETS.pop("poisoned", None)


def test_wrong_label_counts_are_refused():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=r"'binary' needs .* 2 classes"):
        from_arrays(X, np.arange(30) % 3, "binary")
    with pytest.raises(ValueError, match=r"multilabel y must be \(m, c\)"):
        from_arrays(X, np.arange(30) % 3, "multilabel")
    with pytest.raises(ValueError, match="cannot be split"):  # 1 example of class 2
        from_arrays(X, np.r_[np.arange(29) % 2, 2], "multiclass")
