"""The scikit-learn estimators: scikit-learn's own estimator checks, its tools, and the engine."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from ffexp.sklearn import FFClassifier, FFRegressor


@parametrize_with_checks([FFClassifier(hidden_layer_sizes=(32,)), FFRegressor(hidden_layer_sizes=(32,))])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
