"""The sweep's status in the launching process: the sweep directory claimed and the sweep's
unique id handed to every job (``SweepStatus``, a Hydra callback), then every job's status file
read back into the sweep's verdict (``report_sweep``).

Each job writes ``<job dir>/ffexp_status.json`` (ffexp.launch.main), whichever launcher ran it
and in whichever process, so the verdict does not depend on Hydra's return values.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, open_dict, read_write

STATUS_FILE = "ffexp_status.json"
#: a job's spool folder (ffexp.tracking.spool.SPOOL_DIR)
SPOOL_DIR = "mlflow_spool"
#: the sweep's unique id, in every job's Hydra config (hydra.job.env_set), whatever the launcher
SWEEP_UID_ENV = "FFEXP_SWEEP_UID"
USAGE_EXIT = 2
#: a job's statuses that are not failures: trained and recorded, finished before (a resume's
#: skip), trained with its record spooled while the store was away (ffexp-sync uploads it)
SUCCEEDED = ("ok", "skipped", "spooled")


class SweepStatus(HydraCallback):
    """Claims the sweep's directory and gives the sweep its unique id (in every job's config),
    then remembers the directory for ``main`` (Hydra runs callbacks in this process, whichever
    launcher runs the jobs), after clearing stale status files from it."""

    sweep_dir: str | None = None
    #: the sweep's result lines (the table, where the comparison figures are), which
    #: ffexp.report.sweep_end's callback hands over for ``report_sweep`` to print last
    conclusion: list[str] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        SweepStatus.conclusion = []
        sweep = claim_sweep_dir(config)
        for stale in sweep.rglob(STATUS_FILE) if sweep.is_dir() else ():
            stale.unlink()
        SweepStatus.sweep_dir = str(sweep)


def _chosen_sweep_dir(config: DictConfig) -> bool:
    """Whether the user set hydra.sweep.dir on the command line."""
    return any(str(o).lstrip("+~").startswith("hydra.sweep.dir=")
               for o in config.hydra.overrides.hydra)


def _override_value(path: Path) -> str:
    text = str(path)
    return text if re.fullmatch(r"[\w./-]+", text) else "'" + text.replace("'", "\\'") + "'"


def claim_sweep_dir(config: DictConfig) -> Path:
    """Take the sweep directory for this sweep (ffexp.tracking.handoff.claim) and hand the
    sweep's unique id to every job through its config (``hydra.job.env_set``).

    A directory a live sweep holds: refused in one line (exit 2) when the user chose it with
    hydra.sweep.dir; otherwise (the default ``multirun/<date>/<time>``, or a config file's)
    this sweep runs in the first free ``<dir>-2``, ``<dir>-3``, ... and says so."""
    from ffexp.tracking import handoff
    uid = handoff.new_uid()
    base = sweep = Path(str(config.hydra.sweep.dir))
    for n in itertools.count(2):
        holder = handoff.claim(sweep, uid)
        if holder is None:
            break
        if _chosen_sweep_dir(config):
            print(f"ffexp: error: hydra.sweep.dir={sweep}: another sweep is running in this "
                  f"directory ({holder}); choose another one with hydra.sweep.dir=<dir>, or "
                  f"wait until it ends", file=sys.stderr, flush=True)
            raise SystemExit(USAGE_EXIT)
        sweep = base.with_name(f"{base.name}-{n}")
    overrides = [f"++hydra.job.env_set.{SWEEP_UID_ENV}={uid}"]
    if sweep != base:
        overrides.append(f"hydra.sweep.dir={_override_value(sweep)}")
        print(f"ffexp: {base} is in use by another sweep; this one runs in {sweep}", flush=True)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.overrides.hydra.extend(overrides)  # what every job's config is made of
        config.hydra.job.env_set[SWEEP_UID_ENV] = uid
        config.hydra.sweep.dir = str(sweep)
    return sweep


def sweep_records(sweep_dir: Path) -> list[dict]:
    """Every job's status record, in job order.

    A job is a directory under the sweep with Hydra's ``.hydra`` record or a status file; one
    without a status file died before it could write one and counts as failed."""
    statuses = {p.parent: json.loads(p.read_text()) for p in sweep_dir.rglob(STATUS_FILE)}
    job_dirs = set(statuses) | {p.parent for p in sweep_dir.rglob(".hydra") if p.parent != sweep_dir
                                and not _earlier_sweeps(p, sweep_dir)}
    return [statuses.get(d) or {"job_num": d.name, "overrides": [], "status": "failed",
                                "error": f"no {STATUS_FILE} in {d}: the job died"}
            for d in sorted(job_dirs, key=lambda p: (statuses.get(p, {}).get("job_num", 1 << 30),
                                                     str(p)))]


def _earlier_sweeps(hydra_dir: Path, sweep_dir: Path) -> bool:
    """Whether a job's ``.hydra`` record is older than this sweep's ``multirun.yaml`` (written
    when the sweep starts): a job of an earlier sweep in the same directory, not one of this
    sweep's (a resume that skipped it before submission, ffexp.launch.resume)."""
    try:
        started = (sweep_dir / "multirun.yaml").stat().st_mtime
        written = (hydra_dir / "config.yaml").stat().st_mtime
    except OSError:
        return False
    return written < started


def sweep_failures(sweep_dir: Path) -> tuple[list[dict], int]:
    """(failed jobs' status records, number of jobs) of a finished sweep; a skipped job
    (tracking.skip_existing) is a success."""
    records = sweep_records(sweep_dir)
    return [r for r in records if r["status"] not in SUCCEEDED], len(records)


def _resumed(records: list[dict]) -> str:
    """`` (2 skipped: finished before; 1 rerun)`` for a sweep with tracking.skip_existing."""
    skipped = sum(r["status"] == "skipped" for r in records)
    rerun = sum(bool(r.get("rerun_of")) for r in records)
    return f" ({skipped} skipped: finished before; {rerun} rerun)" if skipped or rerun else ""


_SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(", "tag(", "sort(", "shuffle(")


def sweeps(value: str) -> bool:
    """Whether an override's value gives several values: a comma outside brackets and quotes
    (``relu,tanh``, ``[16],[16,16]``, ``{name:he},{name:xavier}``) or a sweep function."""
    text = str(value).strip()
    if text.startswith(_SWEEP_FUNCTIONS):
        return True
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def varied_keys(command_line: str, sweeper_params=None) -> set[str]:
    """The keys a sweep gives several values, on its command line or in the sweeper's params
    (a study preset's ``hydra.sweeper.params``); a job's line shows only those."""
    try:
        tokens = shlex.split(command_line or "")
    except ValueError:
        tokens = (command_line or "").split()
    pairs = [t.partition("=")[::2] for t in tokens if "=" in t and not t.startswith("-")]
    pairs += [(str(k), str(v)) for k, v in (sweeper_params or {}).items()]
    return {k.lstrip("+~") for k, v in pairs
            if not k.lstrip("+~").startswith("hydra.") and sweeps(v)}


def next_commands(sweep_dir: Path) -> list[str]:
    """The commands that open the sweep's parent run in the MLflow UI and write its report
    (none when the sweep was not tracked)."""
    from ffexp.tracking import handoff, store
    try:
        target = handoff.read(sweep_dir)
    except (OSError, ValueError):
        return []
    if target is None:
        return []
    uri = target.tracking_uri
    lines = ["ffexp: the sweep's parent run (its comparison figures: Artifacts, comparison/):"]
    base = uri
    if not uri.startswith(("http://", "https://")):
        base = "http://127.0.0.1:5000"
        lines.append(f"  {store.ui_command(uri)}")
    lines.append(f"  then open {base.rstrip('/')}/#/experiments/{target.experiment_id}/runs/"
                 f"{target.parent_run_id}")
    default = uri == store.resolve_uri(None)
    report = "ffexp-report" + ("" if default else f" --tracking-uri {shlex.quote(uri)}")
    lines.append(f"ffexp: the report: {report} --sweep {target.parent_run_id}")
    return lines


def report_sweep(sweep_dir: Path) -> int:
    """Print the sweep's outcome, after its result table (``SweepStatus.conclusion``) and the
    commands that open its parent run and write its report; 0 if every job succeeded (or was
    skipped), else 1."""
    records = sweep_records(sweep_dir)
    failed = [r for r in records if r["status"] not in SUCCEEDED]
    total, resumed = len(records), _resumed(records)
    for line in [*SweepStatus.conclusion, *next_commands(sweep_dir)]:
        print(line, flush=True)
    spooled = sum(r["status"] == "spooled" for r in records)
    if spooled:
        print(f"ffexp: warning: {spooled} of {total} jobs trained while the MLflow store was "
              f"unreachable; their records are spooled in their folders ({SPOOL_DIR}/); "
              f"upload them with: ffexp-sync {shlex.quote(str(sweep_dir))} (a rerun with "
              f"tracking.skip_existing=true does it first)", file=sys.stderr, flush=True)
    if not failed:
        print(f"ffexp: {total} job(s) done{resumed}; outputs in {sweep_dir}", flush=True)
        return 0
    names = "; ".join(f"[job {r['job_num']}] {' '.join(r['overrides']) or '(defaults)'}"
                      for r in failed)
    print(f"ffexp: {len(failed)} of {total} jobs failed{resumed}: {names} (see {STATUS_FILE} "
          f"and the job logs under {sweep_dir})", file=sys.stderr, flush=True)
    return 1
