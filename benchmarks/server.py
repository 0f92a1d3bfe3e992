"""Request latency of a local ``mlflow server``: the default (uvicorn) against gunicorn.

Starts each server variant on 127.0.0.1 (SQLite backend and artifacts in a temporary
directory), creates a run and times, on one kept-alive HTTP connection (a requests.Session, as
MLflow's client uses), N small tracking requests of three kinds: ``log-metric`` (one value),
``log-batch`` (40 values, ffexp's per-epoch batch) and ``runs/get``. Prints the median and the
90th percentile in ms per request, and the ratio of each variant to the default. Then, per
variant, the wall time of a 6-job ffexp sweep (2 joblib workers) against that server.

    python benchmarks/server.py            # N=200 requests of each kind
    python benchmarks/server.py --n 500 --no-sweep
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
#: name -> extra ``mlflow server`` options
VARIANTS = {
    "default (uvicorn, 4 workers)": [],
    "uvicorn --workers 2": ["--workers", "2"],
    "gunicorn --workers 2": ["--gunicorn-opts", "--workers 2"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = open(root / "server.log", "ab")
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port",
                             str(port), "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
                             "--artifacts-destination", str(root / "artifacts"), *extra],
                            cwd=root, stdout=log, stderr=log, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "server.log").read_text()[-2000:])
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def time_requests(url: str, n: int) -> dict[str, list[float]]:
    api = f"{url}/api/2.0/mlflow"
    s = requests.Session()
    exp = s.post(f"{api}/experiments/create", json={"name": f"bench-{time.time_ns()}"}).json()
    run = s.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"],
                                             "start_time": int(time.time() * 1000)}).json()
    run_id = run["run"]["info"]["run_id"]
    ts = int(time.time() * 1000)
    kinds = {
        "log-metric": lambda i: s.post(f"{api}/runs/log-metric", json={
            "run_id": run_id, "key": "m", "value": i * 0.5, "timestamp": ts, "step": i}),
        "log-batch (40)": lambda i: s.post(f"{api}/runs/log-batch", json={
            "run_id": run_id, "metrics": [{"key": f"k{j}", "value": i + j, "timestamp": ts,
                                           "step": i} for j in range(40)]}),
        "runs/get": lambda i: s.get(f"{api}/runs/get", params={"run_id": run_id}),
    }
    times: dict[str, list[float]] = {}
    for kind, call in kinds.items():
        for i in range(5):  # warm up
            call(-1 - i).raise_for_status()
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            call(i).raise_for_status()
            samples.append((time.perf_counter() - t0) * 1000)
        times[kind] = samples
    return times


def time_sweep(url: str, root: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "ffexp"), "-m", "seed=0,1,2", "train.epochs=1,3",
                    "model.hidden_sizes=[8,8]", "dataset.params.n_samples=200",
                    "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"tracking.uri={url}"],
                   cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="requests of each kind per variant")
    ap.add_argument("--no-sweep", action="store_true", help="skip the 6-job sweep timing")
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    sweeps: dict[str, float] = {}
    for name, extra in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="ffexp-bench-server-") as tmp:
            proc, url = start_server(Path(tmp), extra)
            try:
                results[name] = time_requests(url, args.n)
                if not args.no_sweep:
                    sweeps[name] = time_sweep(url, Path(tmp))
            finally:
                stop_server(proc)
    base = next(iter(results.values()))
    print(f"mlflow server request latency, {args.n} requests of each kind on one kept-alive "
          f"connection (ms: median / p90; ratio of medians to the default)")
    for name, times in results.items():
        cells = []
        for kind, samples in times.items():
            med = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            ratio = med / statistics.median(base[kind])
            cells.append(f"{kind} {med:6.1f} / {p90:6.1f} (x{ratio:.2f})")
        print(f"  {name:30s} " + "   ".join(cells))
    for name, seconds in sweeps.items():
        print(f"  6-job sweep (2 joblib workers) against {name}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
