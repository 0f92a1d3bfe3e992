"""MLflow tracking at the edge (placeholder seam; the tracking work replaces the body).

The composition root calls::

    with record_job(settings, job, context) as recorder:
        result = execute(job, callbacks=[..., *recorder.callbacks])
        recorder.finish(result)

``settings`` is the typed ffexp.config.Settings, ``job`` the ffexp.app.Job, ``context`` the
ffexp.config.RunContext (mode, overrides, output/sweep dirs, job number, command line,
resolved config as a plain dict). On an exception the context manager marks the run FAILED
(KILLED on KeyboardInterrupt / SIGTERM) and re-raises.
"""

from __future__ import annotations

from contextlib import contextmanager


class NullRecorder:
    """Records nothing: used when tracking.enabled is false."""

    callbacks: list = []

    def finish(self, result) -> None:
        pass


@contextmanager
def record_job(settings, job, context):
    yield NullRecorder()
