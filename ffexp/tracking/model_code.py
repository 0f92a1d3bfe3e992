"""The pyfunc model's code (MLflow's models-from-code): MLflow copies this file into the model
and runs it on loading, so no pickled object is stored or unpickled. The network and its
scaling come from the model's artifacts ``network.npz`` and ``scaling.npz`` (numpy, no pickle).
"""

import mlflow

from ffexp.tracking.model import NetworkModel

mlflow.models.set_model(NetworkModel())
