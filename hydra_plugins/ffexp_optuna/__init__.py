"""ffexp's Optuna sweeper as a Hydra plugin: Hydra instantiates plugins from ``hydra_plugins``
only."""
