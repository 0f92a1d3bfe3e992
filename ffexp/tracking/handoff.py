"""How a sweep's parent run reaches its jobs: a small JSON file in the sweep directory.

The launching process writes it (ffexp.launch.mlflow_sweep) before any job starts; each job, in
this process or in a joblib worker, reads it. Explicit on purpose: the ``MLFLOW_RUN_ID``
environment variable silently overrides a child's parent (mlflow #15713), and a worker process
reused by joblib would keep a stale value.

Sweep identity: every sweep has a unique id (``sweep_uid``, made by ``claim``) that its parent
run, this file and every job carry (the jobs get it through their own Hydra config, see
ffexp.launch.main). ``read`` refuses a handoff written by another sweep, so a job never attaches
to another sweep's parent. ``claim`` takes the directory for one live sweep: an exclusive
``flock`` on ``<sweep dir>/.ffexp_sweep.lock``, held by the launching process until it ends
(the kernel releases it however the process ends, SIGKILL included).

The other way, a job skipped by ``tracking.skip_existing`` leaves the id of the FINISHED run it
relies on in ``<job dir>/mlflow_skipped.txt``; the parent's summary collects them.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = "mlflow_sweep.json"
LOCK = ".ffexp_sweep.lock"
#: sweep directory -> the open file descriptor holding its lock (this process's sweeps)
_HELD: dict[str, int] = {}
#: sweep directories this process created (removed again if no job ran in them)
_CREATED: set[str] = set()


class ForeignSweep(ValueError):
    """The sweep directory's handoff belongs to another sweep than the job's."""


@dataclass(frozen=True)
class SweepTarget:
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str
    #: the override keys whose values differ between the sweep's jobs (for run names)
    varied: tuple[str, ...] = ()
    #: the sweep's unique id (``claim``); "" in a handoff of an older ffexp
    sweep_uid: str = ""
    #: how many jobs the sweep has, when known before it starts (a grid; None: Optuna)
    n_jobs: int | None = None


def write(sweep_dir, target: SweepTarget) -> Path:
    path = Path(sweep_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(target), indent=1))
    tmp.replace(path)  # atomic: a job never reads half a file
    return path


def read(sweep_dir, sweep_uid: str | None = None) -> SweepTarget | None:
    """The sweep's parent run, or None; ForeignSweep if the file names another sweep than
    ``sweep_uid`` (the job's own; None: not checked)."""
    if not sweep_dir:
        return None
    path = Path(sweep_dir) / FILE
    if not path.is_file():
        return None
    fields = json.loads(path.read_text())
    target = SweepTarget(**{**fields, "varied": tuple(fields.get("varied", ()))})
    if sweep_uid and target.sweep_uid != sweep_uid:
        raise ForeignSweep(f"hydra.sweep.dir={sweep_dir}: {FILE} there belongs to another sweep "
                           f"({target.sweep_uid or 'unknown id'}, parent run "
                           f"{target.parent_run_id}), not to this job's sweep {sweep_uid}; the "
                           f"job is not recorded under another sweep's parent")
    return target


def new_uid() -> str:
    """A sweep id unique across hosts and time: ``<yyyymmdd-HHMMSS>-<8 hex>``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def claim(sweep_dir, sweep_uid: str) -> str | None:
    """Take ``sweep_dir`` for this process's sweep ``sweep_uid``: None when done, else who holds
    it (a live sweep's lock: ``pid <pid> on <host>, sweep <uid>``). The lock is kept until
    ``release`` or the end of the process. On a filesystem without flock nothing is locked."""
    import fcntl
    d = Path(sweep_dir)
    if not d.exists():
        _CREATED.add(str(d))
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = (d / LOCK).read_text().strip()
        return holder or "another process"
    except OSError:  # no flock here (some network filesystems): cannot tell, go on
        pass
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, sweep {sweep_uid}\n".encode(),
              0)
    _HELD[str(d)] = fd
    return None


def release(sweep_dir=None) -> None:
    """Give up the lock of ``sweep_dir`` (every lock of this process if None)."""
    for key in [str(Path(sweep_dir))] if sweep_dir is not None else list(_HELD):
        fd = _HELD.pop(key, None)
        if fd is not None:
            os.close(fd)
        _remove_if_unused(Path(key))


def _remove_if_unused(d: Path) -> None:
    """A directory this process created for a sweep that was refused before any job (it holds
    only the lock) is removed, with its date folder if that is then empty."""
    if str(d) not in _CREATED or not d.is_dir() or {p.name for p in d.iterdir()} != {LOCK}:
        return
    _CREATED.discard(str(d))
    (d / LOCK).unlink(missing_ok=True)
    remove_empty(d)


def remove_empty(folder: Path) -> None:
    """Remove ``folder`` and then its parents while they are empty, up to (not including) the
    working directory; nothing outside it."""
    start, folder = Path.cwd().resolve(), folder.resolve()
    while start in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty: kept
            return
        folder = folder.parent


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
