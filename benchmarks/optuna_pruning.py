"""What the median pruner saves in an Optuna search (issue 28's done-when search).

30 trials over the learning rate (log-uniform in [1e-4, 10]), the hidden layers' width and
the activation on the default dataset (moons, 200 epochs), TPE, two trials in flight in joblib
workers, the study in a fresh SQLite storage, tracked in a fresh SQLite MLflow store, through
the real command::

    ffexp -m hydra/sweeper=optuna hydra.sweeper.n_trials=30 hydra.sweeper.n_jobs=2 \
        hydra/launcher=joblib hydra.launcher.n_jobs=2 \
        'optimizer.lr=tag(log, interval(0.0001, 10))' \
        'model.hidden_sizes=choice([8,8],[16,16],[32,32],[64,64])' \
        activation=relu,tanh,sigmoid,leaky_relu hydra.sweeper.pruner=<median|none>

once with the median pruner and once without (``none``: the baseline), each a process started
from here in its own temporary directory (wall clock and the CPU of the process tree). Prints
per variant the trials' states, the epochs the pruned trials stopped at, the epochs trained in
all, the best value, and the ratios pruned / none; ``uptime`` before and after (the machine is
shared). ``--trials`` and ``--epochs`` shrink it.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FFEXP = str(Path(sys.executable).with_name("ffexp"))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def search(pruner: str, trials: int, epochs: int, seed: int) -> dict:
    import optuna
    with tempfile.TemporaryDirectory(prefix="ffexp-optuna-") as tmp:
        args = [FFEXP, "-m", "hydra/sweeper=optuna", f"hydra.sweeper.n_trials={trials}",
                "hydra.sweeper.n_jobs=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                "optimizer.lr=tag(log, interval(0.0001, 10))",
                "model.hidden_sizes=choice([8,8],[16,16],[32,32],[64,64])",
                "activation=relu,tanh,sigmoid,leaky_relu", f"train.epochs={epochs}",
                f"hydra.sweeper.pruner={pruner}", f"hydra.sweeper.seed={seed}",
                f"hydra.sweeper.storage=sqlite:///{tmp}/optuna.db",
                "hydra.sweeper.study_name=bench", f"tracking.uri=sqlite:///{tmp}/mlflow.db"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"ffexp exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        study = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/optuna.db")
        states = Counter(t.state.name for t in study.trials)
        pruned_at = sorted(t.last_step for t in study.trials if t.state.name == "PRUNED")
        trained = sum(t.last_step if t.state.name == "PRUNED" else epochs
                      for t in study.trials if t.state.name in ("PRUNED", "COMPLETE"))
        best = study.best_value if states.get("COMPLETE") else float("nan")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall": wall, "cpu": cpu, "states": dict(states), "pruned_at": pruned_at,
            "epochs": trained, "best": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    print(f"before: {uptime()}", flush=True)
    results = {}
    for pruner in ("none", "median"):
        r = results[pruner] = search(pruner, a.trials, a.epochs, a.seed)
        print(f"pruner={pruner:6s} wall {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  "
              f"states {r['states']}  epochs trained {r['epochs']}  best val/accuracy "
              f"{r['best']:.4g}", flush=True)
        if r["pruned_at"]:
            print(f"  pruned at epochs {r['pruned_at']}", flush=True)
    base, pruned = results["none"], results["median"]
    print(f"median / none: wall {pruned['wall'] / base['wall']:.2f}  cpu "
          f"{pruned['cpu'] / base['cpu']:.2f}  epochs {pruned['epochs'] / base['epochs']:.2f}")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
