"""How a sweep's parent run reaches its jobs: a small JSON file in the sweep directory.

The launching process writes it (ffexp.tracking.sweep) before any job starts; each job, in
this process or in a joblib worker, reads it. Explicit on purpose: the ``MLFLOW_RUN_ID``
environment variable silently overrides a child's parent (mlflow #15713), and a worker process
reused by joblib would keep a stale value.

The other way, a job skipped by ``tracking.skip_existing`` leaves the id of the FINISHED run it
relies on in ``<job dir>/mlflow_skipped.txt``; the parent's summary collects them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = "mlflow_sweep.json"


@dataclass(frozen=True)
class SweepTarget:
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str
    #: the override keys whose values differ between the sweep's jobs (for run names)
    varied: tuple[str, ...] = ()


def write(sweep_dir, target: SweepTarget) -> Path:
    path = Path(sweep_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(target), indent=1))
    tmp.replace(path)  # atomic: a job never reads half a file
    return path


def read(sweep_dir) -> SweepTarget | None:
    if not sweep_dir:
        return None
    path = Path(sweep_dir) / FILE
    if not path.is_file():
        return None
    fields = json.loads(path.read_text())
    return SweepTarget(**{**fields, "varied": tuple(fields.get("varied", ()))})


def remove(sweep_dir) -> None:
    """Forget a previous sweep's parent (a sweep directory can be reused)."""
    (Path(sweep_dir) / FILE).unlink(missing_ok=True)


#: in a skipped job's output directory: the id of the FINISHED run that made it unnecessary
SKIPPED = "mlflow_skipped.txt"


def note_skipped(output_dir, run_id: str) -> None:
    """A job of the sweep was skipped (tracking.skip_existing): its earlier run, for the
    parent's summary."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / SKIPPED).write_text(run_id + "\n")


def skipped(sweep_dir) -> list[str]:
    """The run ids the sweep's skipped jobs point to."""
    sweep = Path(sweep_dir)
    return sorted({p.read_text().strip() for p in sweep.rglob(SKIPPED)} - {""}) \
        if sweep.is_dir() else []


def clear_skipped(sweep_dir) -> None:
    """Forget the skip notes of an earlier sweep in the same directory."""
    sweep = Path(sweep_dir)
    for p in sweep.rglob(SKIPPED) if sweep.is_dir() else ():
        p.unlink()
