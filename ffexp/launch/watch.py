"""The submitting console's view of a sweep whose jobs run elsewhere (SLURM through Hydra's
submitit launcher, or its local executor): one line per job as it ends.

Hydra's submitit launcher submits the array and then waits for each job's result in job order
(``job.results()``), printing nothing; each job prints its line into its own SLURM log. Every
job also writes ``<job dir>/ffexp_status.json`` when it ends, on the filesystem the submitter
shares with the nodes, so ``Watcher`` (a thread of the submitting process, while the launcher
waits) reads the sweep directory every ``interval`` seconds and prints each new status file
as the job's line, the same line the job printed (ffexp.job.progress.job_line), in the order
the jobs end. A status file being written (not yet valid JSON) is read at the next pass; the
last pass runs when the launcher returns, so every ended job's line is printed once. Status
files present when the watch starts (the jobs a resume skipped before submission, which
printed their lines) are not printed again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ffexp.job.progress import job_line, print_job_line

#: a job's status file (ffexp.launch.status.STATUS_FILE)
STATUS_FILE = "ffexp_status.json"


def line_of(record: dict) -> str:
    """The job's console line from its status record."""
    num, overrides = record.get("job_num", "?"), record.get("overrides") or []
    seconds = float(record.get("seconds") or 0.0)
    status, outcome = record.get("status"), record.get("outcome") or ""
    if status == "skipped":
        return job_line(num, overrides, "skipped", seconds,
                        error=f"run {record.get('run_id')} finished it before")
    metric = (record["metric"], float(record["value"])) \
        if record.get("metric") and record.get("value") is not None else None
    if status == "spooled":
        return job_line(num, overrides, "spooled", seconds, metric,
                        error=f"(store unreachable: record in {record.get('spool')})")
    if status == "ok":
        rerun = record.get("rerun_of") or []
        return job_line(num, overrides, outcome, seconds, metric,
                        error=f"(rerun of {', '.join(rerun)})" if rerun else "")
    return job_line(num, overrides, (outcome or "failed").upper(), seconds,
                    error=record.get("error") or "")


def uses_remote_jobs(launcher) -> bool:
    """Whether ``launcher`` runs the jobs in processes whose output the console does not see
    (Hydra's submitit launchers)."""
    return type(launcher).__module__.startswith("hydra_plugins.hydra_submitit_launcher")


class Watcher:
    """``with Watcher(sweep_dir):`` prints each job's line as its status file appears."""

    def __init__(self, sweep_dir, interval: float = 2.0, seen=()) -> None:
        self.sweep_dir, self.interval = Path(sweep_dir), float(interval)
        self.seen: set[Path] = set(seen)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """Print the lines of the jobs that ended since the last pass; how many."""
        new = []
        for path in self.sweep_dir.rglob(STATUS_FILE):
            if path in self.seen:
                continue
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):  # being written: the next pass reads it
                continue
            self.seen.add(path)
            new.append(record)
        for record in new:
            print_job_line(line_of(record))
        return len(new)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except OSError:
                pass

    def __enter__(self) -> "Watcher":
        # what is there already was printed (jobs skipped before submission, ffexp.launch.resume)
        self.seen.update(self.sweep_dir.rglob(STATUS_FILE))
        self._thread = threading.Thread(target=self._run, name="ffexp-sweep-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
