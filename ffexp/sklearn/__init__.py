"""scikit-learn estimators on the engine: ``FFClassifier`` and ``FFRegressor``.

Thin adapters over ``ffexp.Network`` and ``ffexp.train``, no numerics of their own. X is
(n_samples, n_features) as in scikit-learn; the engine's examples are columns, so ``fit``
trains on the transposes X[0] = Xᵀ (n[0] × m) and Yᵀ (n[L] × m), and ``predict_proba`` /
``predict`` of the regressor is ``network_.forward(Xᵀ)ᵀ``. The task follows from y:

| y                              | task       | output layer g[L]   | loss="auto" |
|--------------------------------|------------|---------------------|-------------|
| two classes                    | binary     | 1 sigmoid unit      | bce         |
| three or more classes          | multiclass | c softmax units (β) | cce         |
| 0/1 indicator matrix (n, c)    | multilabel | c sigmoid units     | bce         |
| real values, (n,) or (n, k)    | regression | k linear units      | mse         |

Hyperparameters are stored as given and checked at ``fit`` against ``_parameter_constraints``
(scikit-learn's ``InvalidParameterError``, naming the parameter). Learned state: ``network_``,
``classes_``, ``n_features_in_``, ``n_outputs_``, ``history_`` (a DataFrame indexed by epoch,
0 = before any update, columns named as the MLflow metrics: ``train/cost``,
``grad_norm/W{l}``, ``grad_norm/Z{l}``, ``act_mean/{l}``, ...), ``outcome_`` (finished |
converged | diverged | stopped), ``n_iter_``.
An int ``random_state`` is the engine's seed: ``FFClassifier(random_state=s)`` trains the same
weights as ``Network(..., seed=s)`` with ``train(...)``.
"""

from ._classifier import FFClassifier
from ._regressor import FFRegressor

__all__ = ["FFClassifier", "FFRegressor"]
