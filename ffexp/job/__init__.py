"""One job without Hydra or MLflow: its typed settings, the dataset (scikit-learn), the task
metrics, preparing and executing the training, the BLAS limit and the progress callbacks."""
