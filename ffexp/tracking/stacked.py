"""Stacked jobs (ffexp.job.stacked) recorded as one MLflow run each."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Sequence

from ffexp.job.stacked import execute_stacked
from ffexp.nn import Callback
from ffexp.tracking import record_job


def record_stacked(entries: Sequence[tuple], callbacks: Sequence[Sequence[Callback]] | None = None
                   ) -> list[tuple]:
    """``execute_stacked`` inside each job's MLflow run: ``entries`` are (settings, job,
    context) as ``ffexp.tracking.record_job`` takes them; per job (JobResult or None,
    recorder or None, the Exception that failed the job or None). A job whose run cannot be
    opened, or whose callbacks raise, fails alone: its run (if any) is closed FAILED with the
    error, the other jobs train and are recorded."""
    opened: list[tuple[int, AbstractContextManager, object]] = []
    out: list[list] = [[None, None, None] for _ in entries]
    try:
        for i, (settings, job, context) in enumerate(entries):
            manager = record_job(settings, job, context)
            try:
                recorder = manager.__enter__()
            except Exception as err:
                out[i][2] = err
                continue
            opened.append((i, manager, recorder))
            out[i][1] = recorder
        extra = [[] for _ in entries] if callbacks is None else [list(c) for c in callbacks]
        results = execute_stacked([entries[i][1] for i, _, _ in opened],
                                  [[*extra[i], *r.callbacks] for i, _, r in opened])
    except BaseException as err:   # an interrupt, a time limit: every open run closes with it
        for _, manager, _ in reversed(opened):
            try:
                manager.__exit__(type(err), err, err.__traceback__)
            except BaseException:
                pass
        raise
    # closed last-opened first: each record_job restores the signal handlers it replaced
    for (i, manager, recorder), result in reversed(list(zip(opened, results))):
        try:
            if isinstance(result, Exception):
                raise result
            recorder.finish(result)
            out[i][0] = result
            manager.__exit__(None, None, None)
        except Exception as err:
            out[i][0], out[i][2] = None, err
            if isinstance(result, Exception):
                try:
                    manager.__exit__(type(err), err, err.__traceback__)
                except Exception as closed:
                    out[i][2] = closed
    return [tuple(o) for o in out]
