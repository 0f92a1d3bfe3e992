"""The sweep of benchmarks/sweep.py done by ffexp, by a hand-written scikit-learn loop and by a
hand-written PyTorch loop, in one sitting: CPU seconds of the process trees per job, and their
ratios.

The sweep: 5 activations × 4 inits × 5 seeds = 100 jobs (``--jobs`` shrinks it as sweep.py
does), moons (400 samples, noise 0.2, ffexp's split), 2-16-16-1, mini-batch 32, learning rate
0.1, ``--epochs`` 50, joblib with ``--n-jobs`` 2 workers. Each variant is one process tree
started from here, its CPU time (user + system, the process and its waited-for descendants):

- ``ffexp tracked`` / ``ffexp untracked``: the real ``ffexp -m ...`` command, as sweep.py runs
  it (a fresh SQLite store in a temporary directory; ``tracking.enabled=false``);
- ``sklearn tracked``: one Python process (``--peer sklearn``) running the jobs with
  ``joblib.Parallel``; each job trains ``MLPClassifier(hidden_layer_sizes=(16, 16),
  solver="sgd", momentum=0, learning_rate_init=0.1, batch_size=32)`` one ``partial_fit`` per
  epoch and, in an MLflow run of its own (``mlflow.start_run``, ``log_params``), logs 28 values
  an epoch with ``mlflow.log_metrics`` (train and validation cost, accuracy, F1, ROC AUC, epoch
  and elapsed time, per layer the weight and bias norms and the norms of the epoch's update,
  per hidden layer the activations' mean, std, saturated and dead fractions) into a SQLite store
  made from the same schema template ffexp uses (no migrations paid by either);
- ``sklearn untracked``: the same loop without MLflow;
- ``torch tracked`` / ``torch untracked`` (when PyTorch is installed; skipped when it is not):
  the same process tree (``--peer torch``, ``joblib.Parallel``, the same data, grid, epoch
  shuffle and MLflow logging, or none), each job ``torch.set_num_threads(1)`` and a 2-16-16-1
  ``nn.Sequential`` (float32, PyTorch's default) with ffexp's activation and init:
  ``nn.LeakyReLU(0.01)`` (conf/activation/leaky_relu's slope), random N(0, 0.01²) (conf/init's
  scale), xavier ``xavier_normal_`` and he ``kaiming_normal_`` (conf/init's distribution:
  normal), zeros ``zeros_``, biases 0; plain ``torch.optim.SGD(lr=0.1)``, mini-batches of 32,
  ``BCEWithLogitsLoss``. The 28 values are computed as for scikit-learn (train cost: the
  epoch's mean mini-batch loss; F1 and ROC AUC with scikit-learn's functions).

scikit-learn has no choice of initialization (Glorot uniform) and no leaky ReLU: the "init"
only changes the seed and leaky_relu runs as relu; linear is ``identity``, sigmoid ``logistic``.
PyTorch is not a dependency of ffexp, only of this benchmark's last two rows:
``pip install torch==2.13.0`` (the CPU wheel) into the environment that runs it.

    python benchmarks/peers.py [--jobs 100] [--epochs 50] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sweep  # benchmarks/sweep.py: the same grid and the same measure of a process tree

SKLEARN_ACTIVATION = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu",
                      "leaky_relu": "relu", "linear": "identity"}


def _forward(clf, X):
    """Activations of the hidden layers of an MLPClassifier for X (m, n)."""
    import numpy as np
    act = {"logistic": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
           "relu": lambda z: np.maximum(z, 0), "identity": lambda z: z}[clf.activation]
    out, a = [], X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        a = act(a @ W + b)
        out.append(a)
    return out


def _start_run(uri: str, act: str, init: str, seed: int, epochs: int):
    """Start the peer job's MLflow run in the experiment ``peers`` and log its params, as a
    user would write it (the fluent API); returns ``mlflow``, whose active run it is (imported
    here: an untracked peer does not import MLflow)."""
    import mlflow
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("peers")
    mlflow.start_run(run_name=f"{act}-{init}-{seed}")
    mlflow.log_params({"activation": act, "init": init, "seed": seed, "epochs": epochs,
                       "lr": 0.1, "batch_size": 32, "hidden": "16,16"})
    return mlflow


def _values(clf, before, d, epoch_s: float, elapsed: float) -> dict[str, float]:
    """The 28 values of an epoch."""
    import numpy as np
    from sklearn.metrics import f1_score, log_loss, roc_auc_score
    Xt, yt, Xv, yv = d
    pv = clf.predict_proba(Xv)[:, 1]
    pt = clf.predict_proba(Xt)[:, 1]
    v = {"train/cost": float(clf.loss_), "train/accuracy": float(((pt > 0.5) == yt).mean()),
         "val/cost": float(log_loss(yv, pv, labels=[0, 1])),
         "val/accuracy": float(((pv > 0.5) == yv).mean()),
         "val/f1": float(f1_score(yv, pv > 0.5, zero_division=0)),
         "val/roc_auc": float(roc_auc_score(yv, pv)), "time/epoch": epoch_s,
         "time/elapsed": elapsed}
    for l, (W, b, W0, b0) in enumerate(zip(clf.coefs_, clf.intercepts_, *before), start=1):
        v[f"weight_norm/W{l}"] = float(np.linalg.norm(W))
        v[f"weight_norm/b{l}"] = float(np.linalg.norm(b))
        v[f"update_norm/W{l}"] = float(np.linalg.norm(W - W0))
        v[f"update_norm/b{l}"] = float(np.linalg.norm(b - b0))
    for l, a in enumerate(_forward(clf, Xv), start=1):
        v[f"act_mean/{l}"], v[f"act_std/{l}"] = float(a.mean()), float(a.std())
        v[f"act_saturated/{l}"] = float((np.abs(a) > 0.99).mean())
        v[f"act_dead/{l}"] = float((a == 0).mean())
    return v


def sklearn_job(act: str, init: str, seed: int, epochs: int, uri: str | None, d) -> None:
    """One job: partial_fit per epoch, 28 values an epoch to MLflow (when ``uri``)."""
    import warnings

    import numpy as np
    from sklearn.neural_network import MLPClassifier
    warnings.filterwarnings("ignore")
    Xt, yt, _, _ = d
    clf = MLPClassifier(hidden_layer_sizes=(16, 16), activation=SKLEARN_ACTIVATION[act],
                        solver="sgd", momentum=0.0, nesterovs_momentum=False,
                        learning_rate_init=0.1, batch_size=32,
                        random_state=seed * 10 + sweep.INITS.index(init))
    tracker = _start_run(uri, act, init, seed, epochs) if uri else None
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        before = ([W.copy() for W in clf.coefs_], [b.copy() for b in clf.intercepts_]) \
            if epoch > 1 else None
        e0 = time.perf_counter()
        order = rng.permutation(len(yt))
        clf.partial_fit(Xt[order], yt[order], classes=[0, 1])
        if before is None:
            before = ([np.zeros_like(W) for W in clf.coefs_],
                      [np.zeros_like(b) for b in clf.intercepts_])
        values = _values(clf, before, d, time.perf_counter() - e0, time.perf_counter() - t0)
        if tracker is not None:
            tracker.log_metrics(values, step=epoch)
    if tracker is not None:
        tracker.end_run()


TORCH_INIT_INDEX = {name: i for i, name in enumerate(sweep.INITS)}


def _torch_net(act: str, init: str, seed: int):
    """2-16-16-1 ``nn.Sequential`` with ffexp's activation and init (conf/activation,
    conf/init): leaky_relu slope 0.01; random N(0, 0.01²), xavier N(0, 2/(fan_in+fan_out)),
    he N(0, 2/fan_in), zeros; biases 0; logits out (the sigmoid is in the loss)."""
    import torch
    from torch import nn
    layer = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
             "leaky_relu": lambda: nn.LeakyReLU(0.01), "linear": nn.Identity}[act]
    torch.manual_seed(seed * 10 + TORCH_INIT_INDEX[init])
    net = nn.Sequential(nn.Linear(2, 16), layer(), nn.Linear(16, 16), layer(), nn.Linear(16, 1))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                if init == "random":
                    nn.init.normal_(m.weight, 0.0, 0.01)
                elif init == "xavier":
                    nn.init.xavier_normal_(m.weight)
                elif init == "he":
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
    return net


def _torch_values(net, before, train_cost: float, d, epoch_s: float, elapsed: float
                  ) -> dict[str, float]:
    """The 28 values of an epoch, as ``_values`` computes them for scikit-learn's network."""
    import numpy as np
    import torch
    from sklearn.metrics import f1_score, roc_auc_score
    Xt, yt, Xv, yv = d
    with torch.no_grad():
        pt = torch.sigmoid(net(Xt))[:, 0].numpy()
        z, hidden = Xv, []
        for m in net:
            z = m(z)
            if not isinstance(m, torch.nn.Linear):
                hidden.append(z.numpy())
        val_cost = float(torch.nn.functional.binary_cross_entropy_with_logits(
            z[:, 0], torch.as_tensor(yv, dtype=z.dtype)))
        pv = torch.sigmoid(z)[:, 0].numpy()
        params = [p.detach().numpy() for p in net.parameters()]  # W1, b1, W2, b2, W3, b3
    ytn, yvn = np.asarray(yt), np.asarray(yv)
    v = {"train/cost": train_cost, "train/accuracy": float(((pt > 0.5) == ytn).mean()),
         "val/cost": val_cost, "val/accuracy": float(((pv > 0.5) == yvn).mean()),
         "val/f1": float(f1_score(yvn, pv > 0.5, zero_division=0)),
         "val/roc_auc": float(roc_auc_score(yvn, pv)), "time/epoch": epoch_s,
         "time/elapsed": elapsed}
    for l in range(len(params) // 2):
        W, b, W0, b0 = params[2 * l], params[2 * l + 1], before[2 * l], before[2 * l + 1]
        v[f"weight_norm/W{l + 1}"] = float(np.linalg.norm(W))
        v[f"weight_norm/b{l + 1}"] = float(np.linalg.norm(b))
        v[f"update_norm/W{l + 1}"] = float(np.linalg.norm(W - W0))
        v[f"update_norm/b{l + 1}"] = float(np.linalg.norm(b - b0))
    for l, a in enumerate(hidden, start=1):
        v[f"act_mean/{l}"], v[f"act_std/{l}"] = float(a.mean()), float(a.std())
        v[f"act_saturated/{l}"] = float((np.abs(a) > 0.99).mean())
        v[f"act_dead/{l}"] = float((a == 0).mean())
    return v


def torch_job(act: str, init: str, seed: int, epochs: int, uri: str | None, d) -> None:
    """One job: plain SGD (lr 0.1, mini-batch 32, ``BCEWithLogitsLoss``) over the epoch's
    shuffle, 28 values an epoch to MLflow (when ``uri``); one thread."""
    import warnings

    import numpy as np
    import torch
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    Xt, yt, Xv = (torch.as_tensor(d[i], dtype=torch.float32) for i in (0, 1, 2))
    dt = (Xt, d[1], Xv, d[3])
    net = _torch_net(act, init, seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    tracker = _start_run(uri, act, init, seed, epochs) if uri else None
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        before = [p.detach().numpy().copy() for p in net.parameters()]
        e0 = time.perf_counter()
        order = torch.as_tensor(rng.permutation(len(yt)))
        total = 0.0
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            opt.zero_grad()
            loss = loss_fn(net(Xt[idx])[:, 0], yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        values = _torch_values(net, before, total / len(order), dt,
                               time.perf_counter() - e0, time.perf_counter() - t0)
        if tracker is not None:
            tracker.log_metrics(values, step=epoch)
    if tracker is not None:
        tracker.end_run()


def peer_main(args) -> None:
    """``--peer sklearn|torch``: the whole sweep in this process tree (joblib workers)."""
    from joblib import Parallel, delayed

    try:
        from ffexp.job.data import load_dataset
    except ImportError:  # before the layout of ffexp/job
        from ffexp.job.data import load_dataset
    ds = load_dataset("moons", seed=0, params={"n_samples": 400, "noise": 0.2})
    d = (ds.X_train.T, ds.Y_train[0].astype(int), ds.X_val.T, ds.Y_val[0].astype(int))
    acts, inits, seeds = sweep.grid(args.jobs)
    if args.uri:
        import mlflow
        mlflow.set_tracking_uri(args.uri)
        mlflow.set_experiment("peers")  # once, before the workers
    job = {"sklearn": sklearn_job, "torch": torch_job}[args.peer]
    Parallel(n_jobs=args.n_jobs)(delayed(job)(a, i, s, args.epochs, args.uri, d)
                                 for a, i, s in itertools.product(acts, inits, seeds))


def peer(name: str, tracked: bool, args, cwd: str) -> tuple[float, float, float | None]:
    uri = None
    if tracked:
        from ffexp.tracking.store import schema_template
        template = schema_template()
        db = Path(cwd) / f"{name}.db"
        if template is not None:
            shutil.copyfile(template, db)
        uri = f"sqlite:///{db}"
    cmd = [sys.executable, __file__, "--peer", name, "--jobs", str(args.jobs), "--epochs",
           str(args.epochs), "--n-jobs", str(args.n_jobs), *(["--uri", uri] if uri else [])]
    return sweep._timed(cmd, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="about this many jobs (default 100)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib workers")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer_main(args)
        return
    acts, inits, seeds = sweep.grid(args.jobs)
    n = len(acts) * len(inits) * len(seeds)
    torch = importlib.util.find_spec("torch") is not None
    load0 = sweep._load()
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-peers-") as tmp:
        runs = {
            "ffexp tracked": lambda: sweep.command(True, acts, inits, seeds, args.epochs,
                                                   args.n_jobs),
            "ffexp untracked": lambda: sweep.command(False, acts, inits, seeds, args.epochs,
                                                     args.n_jobs),
            "sklearn tracked": lambda: peer("sklearn", True, args, tmp),
            "sklearn untracked": lambda: peer("sklearn", False, args, tmp),
        }
        if torch:
            runs["torch tracked"] = lambda: peer("torch", True, args, tmp)
            runs["torch untracked"] = lambda: peer("torch", False, args, tmp)
        cpu = {name: run()[1] for name, run in runs.items()}
    print(f"peers: {n} jobs ({len(acts)} activations x {len(inits)} inits x {len(seeds)} seeds), "
          f"moons, 2-16-16-1, mini-batch 32, {args.epochs} epochs, joblib n_jobs={args.n_jobs}; "
          f"{os.cpu_count()} cpus, load average {load0} (start), {sweep._load()} (end)")
    print(f"{'':>18} {'cpu s':>8} {'cpu s/job':>10}")
    for name, seconds in cpu.items():
        print(f"{name:>18} {seconds:>8.1f} {seconds / n:>10.3f}")
    print(f"ffexp tracked / untracked: {cpu['ffexp tracked'] / cpu['ffexp untracked']:.2f} cpu "
          f"(target <= 2.0)")
    print(f"sklearn tracked / untracked: "
          f"{cpu['sklearn tracked'] / cpu['sklearn untracked']:.2f} cpu")
    ratio = cpu["ffexp tracked"] / cpu["sklearn tracked"]
    print(f"ffexp tracked / sklearn tracked: {ratio:.2f} cpu (target < 1: "
          f"{'OK' if ratio < 1 else 'OVER'})")
    if torch:
        print(f"torch tracked / untracked: "
              f"{cpu['torch tracked'] / cpu['torch untracked']:.2f} cpu")
        ratio = cpu["ffexp tracked"] / cpu["torch tracked"]
        print(f"ffexp tracked / torch tracked: {ratio:.2f} cpu (< 1: "
              f"{'OK' if ratio < 1 else 'OVER'})")
    else:
        print("PyTorch: not installed, skipped (pip install torch==2.13.0)")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
