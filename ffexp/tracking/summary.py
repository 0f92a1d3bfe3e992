"""The summary a sweep's parent run gets at the end, read back from its children.

Parent metrics: ``sweep/jobs`` (child runs), ``sweep/finished`` (FINISHED and neither
diverged nor pruned), ``sweep/diverged``, ``sweep/pruned`` (an Optuna trial its pruner
stopped: FINISHED, ``ffexp.outcome=pruned``; shown in the summary line when there are any),
``sweep/failed`` (with the jobs that failed without a run: ``sweep/failed_without_run``, from
their status files), ``sweep/killed``, ``sweep/running`` (should stay 0), ``sweep/skipped``,
``sweep/rerun`` (below) and ``best/val/<main>``; tags ``ffexp.best_run_id``,
``ffexp.best_run_name``, ``ffexp.best_metric`` and ``ffexp.summary`` (one readable line). The
best child is the finished one with the highest validation main metric
(ffexp.job.metrics.MAIN_METRIC of its task; higher is better for all), a pruned run excluded
(its numbers are those of a training stopped early); children that tie share the tags (their
ids and names, comma-separated, in start order). While the sweep runs, each job that ends
writes the same tags and counts from the sweep's status files (ffexp.tracking.tally); this
summary, read from the runs, is written last.

A sweep resumed with ``tracking.skip_existing=true`` also gets ``sweep/skipped`` (jobs whose
config already had a FINISHED run, which stays the child of its own sweep: MLflow has one
parent per run) with those runs' ids in the tag ``ffexp.skipped_run_ids`` (comma-separated;
also in the artifact ``sweep/skipped_run_ids.txt`` when the tag is too short for them), and
``sweep/rerun`` (children tagged ``ffexp.rerun_of``: a config whose earlier run had failed, been
killed or gone stale). The best run is chosen among the children and the skipped runs.

Descriptions (``mlflow.note.content``, the UI's "Description"): every run gets one in words
(``run_note``: outcome, final metrics, diagnoses), the parent one with the counts, the ranking's
top groups (the mean main metric of the finished runs of each combination of the varied
params, seeds pooled) and the best run (``sweep_note``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

MAX_CHILDREN = 50_000
NOTE = "mlflow.note.content"
TOP_GROUPS = 3


def _note_order(key: str) -> tuple:
    """Validation metrics first, then test, then train; the costs after the metrics."""
    split, _, name = key.partition("/")
    return (name == "cost", {"val": 0, "test": 1, "train": 2}.get(split, 3), name)


def _main_metric(task: str) -> str:
    try:
        from ffexp.job.metrics import MAIN_METRIC
        return "val/" + MAIN_METRIC[task]
    except (ImportError, KeyError):
        return "val/accuracy"


def _primary_metric(client, experiment_id: str, metric: str) -> None:
    """The experiment's primary metric, when it has none (a sweep's experiment is created
    before its task's metric is known)."""
    from .tags import PRIMARY_METRIC
    if PRIMARY_METRIC not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, PRIMARY_METRIC, metric)
        client.set_experiment_tag(experiment_id, PRIMARY_METRIC.replace("name", "greaterIsBetter"),
                                  "True")


def children(client, experiment_id: str, parent_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                              max_results=MAX_CHILDREN)


def _state(run) -> str:
    status = run.info.status
    if status == "FINISHED":
        outcome = run.data.tags.get("ffexp.outcome")
        return outcome if outcome in ("diverged", "pruned") else "finished"
    return {"FAILED": "failed", "KILLED": "killed"}.get(status, "running")


def best_children(runs) -> tuple[list, str, float] | None:
    """(the finished children that share the best value, metric name, value), by the main
    metric of the most common task among the children; the tied runs in start order."""
    tasks = Counter(r.data.params.get("task", "") for r in runs)
    if not tasks:
        return None
    metric = _main_metric(tasks.most_common(1)[0][0])
    scored = [(r.data.metrics[metric], r) for r in runs
              if r.info.status == "FINISHED" and _state(r) != "pruned"
              and math.isfinite(r.data.metrics.get(metric, math.nan))]
    if not scored:
        return None
    value = max(v for v, _ in scored)
    tied = sorted((r for v, r in scored if v == value),
                  key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return tied, metric, value


def best_child(runs) -> tuple[object, str, float] | None:
    """(run, metric name, value) of the best finished child (the first started of a tie)."""
    found = best_children(runs)
    return None if found is None else (found[0][0], found[1], found[2])


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def run_note(name: str, dataset: str, train, metrics: dict[str, float],
             diagnoses: dict[str, str], images: int = 0) -> str:
    """A finished run's description: outcome, final metrics, diagnoses, in words."""
    lines = [f"**{name}** on {dataset}: {train.outcome} after {train.epochs} epochs "
             f"({train.updates} updates, {train.seconds:.2f} s)."]
    if train.message and train.outcome != "finished":
        lines.append(f"{train.message}.")
    finite = [f"{k} {_fmt(metrics[k])}" for k in sorted(metrics, key=_note_order)
              if (k.startswith(("val/", "test/")) or k == "train/cost") and math.isfinite(metrics[k])]
    if finite:
        lines.append("Final metrics: " + ", ".join(finite) + ".")
    flagged = [f"{k.replace('_', ' ')} ({v})" for k, v in diagnoses.items() if v]
    lines.append("Diagnoses: " + ("; ".join(flagged) if flagged else
                                   "none flagged (" + ", ".join(k.replace("_", " ")
                                                                for k in diagnoses) + ")") + ".")
    if images:
        lines.append(f"Step images: {images} (decision boundary and gradient flow over epochs).")
    return "\n\n".join(lines)


def _varied(runs) -> list[str]:
    keys = sorted({k for r in runs for k in r.data.params} - {"seed"})
    return [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]


def ranking(runs, metric: str) -> list[tuple[str, float, int]]:
    """[(group, mean metric, finished runs)], best first: the finished runs grouped by the
    params that vary between them (seed excluded)."""
    done = [r for r in runs if _state(r) == "finished"
            and math.isfinite(r.data.metrics.get(metric, math.nan))]
    keys = _varied(done)
    groups: dict[str, list[float]] = defaultdict(list)
    for r in done:
        label = ", ".join(f"{k}={r.data.params.get(k, '')}" for k in keys) or "all"
        groups[label].append(r.data.metrics[metric])
    rows = [(g, sum(v) / len(v), len(v)) for g, v in groups.items()]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def sweep_note(line: str, runs, best) -> str:
    """The parent's description: counts, the top groups, the best run."""
    parts = [f"**Sweep**: {line}."]
    if best is not None:
        run, metric, value = best
        rows = ranking(runs, metric)
        if rows:
            top = [f"{i}. {g}: {metric} {_fmt(m)} (mean of {n})"
                   for i, (g, m, n) in enumerate(rows[:TOP_GROUPS], 1)]
            parts.append(f"Top groups of {len(rows)} by {metric}:\n\n" + "\n".join(top))
        parts.append(f"Best run: **{run.info.run_name}** ({metric} {_fmt(value)}, "
                     f"run id `{run.info.run_id}`).")
    return "\n\n".join(parts)


def _runs_by_id(client, experiment_id: str, run_ids: list[str]) -> list:
    out = []
    for i in range(0, len(run_ids), 100):
        ids = ", ".join(f"'{r}'" for r in run_ids[i:i + 100])
        out += client.search_runs([experiment_id], f"attributes.run_id IN ({ids})",
                                  max_results=100)
    return out


def _killed_by_signal(recs: list[dict], runs) -> dict[str, int]:
    """Jobs a signal stopped (status ``killed``, ffexp.launch.main) whose record the runs do not
    show: ``without_run``, stopped before their run was created; ``running``, whose run stayed
    RUNNING (a SIGKILL came before it was closed: SLURM's KillWait after scancel's SIGTERM),
    matched by its ``ffexp.run_key`` (``<sweep uid>/<job number>``)."""
    from .tags import RUN_KEY
    running = {r.data.tags.get(RUN_KEY, "").rsplit("/", 1)[-1] for r in runs
               if r.info.status == "RUNNING"}
    out = {"without_run": 0, "running": 0}
    for rec in recs:
        if rec.get("status") != "killed" or rec.get("run_id"):
            continue
        out["running" if str(rec.get("job_num")) in running else "without_run"] += 1
    return out


def summarize(client, experiment_id: str, parent_id: str,
              skipped: list[str] = (), sweep_dir=None) -> dict[str, int]:
    """Write the summary onto the parent run; returns the counts. With ``sweep_dir``, the jobs
    that failed without a run (refused, or failed before their run existed: only their status
    file knows them, ffexp.tracking.tally) count as failed too, and those a signal stopped
    before their run existed, or before it was closed, as killed (``_killed_by_signal``)."""
    from mlflow.entities import Metric, RunTag
    from .tags import MAX_TAG, clip
    import time
    runs = children(client, experiment_id, parent_id)
    counts = Counter(_state(r) for r in runs)
    without_run = killed_without_run = spooled = 0
    if sweep_dir is not None:
        from .tally import counts as tally_counts, records
        recs = records(sweep_dir)
        by_status = tally_counts(recs)
        without_run, spooled = by_status["failed_without_run"], by_status["spooled"]
        counts["failed"] += without_run
        stopped = _killed_by_signal(recs, runs)
        killed_without_run = stopped["without_run"]
        counts["killed"] += killed_without_run + stopped["running"]
        counts["running"] -= stopped["running"]
    names = ("finished", "diverged", "failed", "killed", "running", "pruned")
    ts = int(time.time() * 1000)
    rerun = sum(1 for r in runs if r.data.tags.get("ffexp.rerun_of"))
    jobs = len(runs) + without_run + killed_without_run
    metrics = [Metric("sweep/jobs", float(jobs), ts, 0),
               Metric("sweep/failed_without_run", float(without_run), ts, 0)]
    metrics += [Metric(f"sweep/{k}", float(counts.get(k, 0)), ts, 0) for k in names]
    line = f"{jobs} jobs: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in names[:4])
    if without_run:
        line = line.replace(f"{counts['failed']} failed",
                            f"{counts['failed']} failed ({without_run} without a run)")
    if counts.get("pruned"):
        line += f", {counts['pruned']} pruned"
    tags = []
    metrics += [Metric("sweep/skipped", float(len(skipped)), ts, 0),
                Metric("sweep/rerun", float(rerun), ts, 0),
                Metric("sweep/spooled", float(spooled), ts, 0)]
    if spooled:   # trained while the store was away, not uploaded yet (ffexp.tracking.spool)
        line += f"; {spooled} spooled (not uploaded yet: ffexp-sync)"
    if skipped or rerun:
        line += f"; {len(skipped)} skipped (finished before), {rerun} rerun"
    if skipped:
        ids = ",".join(skipped)
        tags.append(RunTag("ffexp.skipped_run_ids", clip(ids)))
        if len(ids) > MAX_TAG:
            client.log_text(parent_id, "\n".join(skipped) + "\n", "sweep/skipped_run_ids.txt")
        runs = runs + _runs_by_id(client, experiment_id, list(skipped))
    found = best_children(runs)
    best = None if found is None else (found[0][0], found[1], found[2])
    if found is not None:
        tied, metric, value = found
        metrics.append(Metric(f"best/{metric}", float(value), ts, 0))
        tags += [RunTag("ffexp.best_run_id", clip(",".join(r.info.run_id for r in tied))),
                 RunTag("ffexp.best_run_name",
                        clip(",".join(r.info.run_name or "" for r in tied))),
                 RunTag("ffexp.best_metric", metric)]
        ties = f" (tied with {len(tied) - 1} more)" if len(tied) > 1 else ""
        line += f"; best {tied[0].info.run_name}{ties} {metric}={value:.4g}"
    tags.append(RunTag("ffexp.summary", line))
    tags.append(RunTag(NOTE, clip(sweep_note(line, runs, best))))
    client.log_batch(parent_id, metrics=metrics, tags=tags)
    if best is not None:
        _primary_metric(client, experiment_id, best[1])
    return {k: counts.get(k, 0) for k in names}
