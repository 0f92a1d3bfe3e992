"""A resumed grid sweep (``tracking.skip_existing=true``) submits only what is missing.

Before the launcher gets the jobs, ``sift`` asks the store once for the experiment's FINISHED
runs (the user's own, unless ``tracking.skip_existing_any_user``: ffexp.tracking.run.
finished_configs) and composes each job's config (with the sweep's loader: each combination of
group choices once) into its config hash (ffexp.tracking.tags.config_hash, the hash the job's
run carries). A job whose hash has a FINISHED run is not submitted: it takes no launcher slot
(a SLURM array task, a joblib worker). It is counted all the same:

- its status file ``<sweep dir>/skipped/<k>/ffexp_status.json`` (``"status": "skipped"``, the
  run's id) and skip note (ffexp.tracking.handoff.note_skipped), as a skipped job writes them,
  so the sweep's verdict, the parent's counts and its ``ffexp.skipped_run_ids`` include it;
- its console line, ``[job k] ...: skipped  run <id> finished it before``.

The jobs that run keep their order and are numbered first (0, 1, ...; the launcher numbers
what it gets); the skipped ones take the numbers after them. A job whose config cannot be
composed or hashed here is submitted (it skips itself if it finds its run).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("ffexp")

#: where the jobs skipped before submission keep their status files
SKIPPED_DIR = "skipped"


def _hashes(loader, config, overrides) -> list[str]:
    """The config hashes a run of the job ``overrides`` may carry (ffexp.tracking.tags.
    config_hashes: today's, then the one runs recorded before canonical values carry); none
    if they cannot be computed here."""
    from omegaconf import OmegaConf, open_dict

    from ffexp.tracking.tags import config_hashes
    try:
        cfg = loader.load_sweep_config(config, list(overrides))
        with open_dict(cfg):
            del cfg["hydra"]
        return config_hashes(OmegaConf.to_container(cfg, resolve=True))
    except Exception as err:  # the launcher's own composition will tell the user
        log.debug("could not hash job %s before launch: %s", overrides, err)
        return []


def sift(config, loader, batches: list[list[list[str]]], sweep_dir: Path):
    """(the batches without the jobs whose configs have a FINISHED run, how many were left
    out); the left-out jobs are recorded as skipped (see the module doc)."""
    tracking = config.get("tracking") or {}
    if not (tracking.get("enabled") and tracking.get("skip_existing")):
        return batches, 0
    from ffexp.tracking import handoff
    target = handoff.read(sweep_dir)
    finished = finished_before(config, target, sweep_dir)
    if not finished:
        return batches, 0
    kept, skipped = [], []
    for batch in batches:
        left = []
        for job in batch:
            run_id = finished_run(loader, config, job, finished)
            (skipped.append((job, run_id)) if run_id else left.append(job))
        if left:
            kept.append(left)
    if skipped:
        first = sum(len(b) for b in kept)
        record_skipped(sweep_dir, [(k, job, run_id)
                                   for k, (job, run_id) in enumerate(skipped, start=first)],
                       target)
    return kept, len(skipped)


def finished_before(config, target, sweep_dir: Path | None = None) -> dict[str, str]:
    """{config hash: run id} of the experiment's FINISHED runs (the user's own unless
    ``tracking.skip_existing_any_user``), in one query; {} without ``tracking.skip_existing``
    or a parent run. With ``sweep_dir``, the records spooled in it and in the experiment's
    latest sweeps' folders are uploaded first (``_sync_spools``): a spooled job is finished."""
    tracking = config.get("tracking") or {}
    if target is None or not (tracking.get("enabled") and tracking.get("skip_existing")):
        return {}
    from ffexp.tracking import store
    from ffexp.tracking.run import finished_configs
    client = store.client(target.tracking_uri)
    if sweep_dir is not None:
        _sync_spools(sweep_dir, client, target.experiment_id)
    return finished_configs(client, target.experiment_id,
                            bool(tracking.get("skip_existing_any_user")))


#: how many of the experiment's latest sweeps a resume looks through for spooled records
EARLIER_SWEEPS = 20


def earlier_sweep_dirs(client, experiment_id: str, sweep_dir: Path) -> list[Path]:
    """This folder and those of the user's latest ``EARLIER_SWEEPS`` sweeps of the experiment
    (their parent runs' ``ffexp.sweep_id``: relative to the folder ffexp starts in, or
    absolute) that exist on this filesystem."""
    from ffexp.tracking.run import _same_user
    folders = [Path(sweep_dir)]
    try:
        parents = client.search_runs([experiment_id], "tags.`ffexp.kind` = 'sweep'"
                                     + _same_user(False), max_results=EARLIER_SWEEPS,
                                     order_by=["attributes.start_time DESC"])
    except Exception as err:   # the resume goes on; ffexp-sync can still be run by hand
        log.warning("could not look for earlier sweeps' folders: %s", err)
        return folders
    for run in parents:
        sweep_id = run.data.tags.get("ffexp.sweep_id")
        folder = Path(sweep_id).resolve() if sweep_id else None
        if folder is not None and folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


def _sync_spools(sweep_dir: Path, client, experiment_id: str) -> None:
    """Upload the records that jobs of earlier sweeps (in this folder, or in the folders of the
    experiment's latest sweeps) spooled while the store was unreachable (ffexp-sync,
    ffexp.tracking.sync), so that their configs count as finished and are not trained again;
    their lines on the console."""
    import sys

    from ffexp.tracking.sync import pending, sync
    folders = [f for f in earlier_sweep_dirs(client, experiment_id, sweep_dir) if pending([f])]
    if folders:
        sync(folders, out=sys.stdout)


def finished_run(loader, config, job, finished: dict[str, str]) -> str | None:
    """The id of a FINISHED run of the job ``job`` (its overrides) among ``finished``
    (``finished_before``), else None."""
    return next((finished[h] for h in _hashes(loader, config, job) if h in finished), None)


def record_skipped(sweep_dir: Path, skipped, target) -> None:
    """Status files, skip notes and console lines of the jobs left out (``skipped``: (job
    number, overrides, run id)); then the parent's count."""
    from ffexp.launch.watch import STATUS_FILE, line_of
    from ffexp.job.progress import print_job_line
    from ffexp.tracking import handoff
    from ffexp.tracking.tally import update_parent
    for k, job, run_id in skipped:
        folder = Path(sweep_dir) / SKIPPED_DIR / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        record = {"job_num": k, "job_id": "", "overrides": list(job), "status": "skipped",
                  "outcome": "skipped", "metric": None, "value": None, "error": "",
                  "seconds": 0.0, "metrics": {}, "run_id": run_id, "rerun_of": [],
                  "pid": os.getpid()}
        (folder / STATUS_FILE).write_text(json.dumps(record, indent=1) + "\n")
        handoff.note_skipped(folder, run_id)
        print_job_line(line_of(record))
    update_parent(sweep_dir, target)
