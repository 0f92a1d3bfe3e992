"""The per-epoch metrics, buffered and sent to MLflow in few ``log_batch`` calls, off the
training thread and, through ffexp.tracking.sender, off the training process.

One ``log_metric`` call per value costs ~2.5 ms on SQLite; a ``log_batch`` of 1,000 values
60-200 ms, most of it MLflow's ORM, which holds the GIL. So the callback keeps the values of
each epoch (``EpochStats.flat()``: finite values only, step = epoch) and hands them, a full
batch at a time or at least every ``flush_seconds`` (a long run is visible live and a killed run
keeps most of its history), to a writer thread that pipes them to the helper process.
``flush()`` (when the run is closed: finished, failed or killed) sends the rest and waits until
everything is stored. If the helper cannot run, the writer thread calls log_batch itself.

The same flush path advances the run's heartbeat tag (ffexp.tracking.stale), at most every
HEARTBEAT_SECONDS: one set_tag off the training thread, nothing per epoch.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping

from ffexp.nn import Callback

from . import sender
from .stale import HEARTBEAT_SECONDS, HEARTBEAT_TAG

#: MLflow's limit of metrics per log_batch request
BATCH_LIMIT = sender.BATCH_LIMIT


def send_metrics(client, run_id: str, metrics: list) -> None:
    """log_batch in chunks of at most BATCH_LIMIT values, in this process."""
    for i in range(0, len(metrics), BATCH_LIMIT):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH_LIMIT], synchronous=True)


def finite_metrics(values: Mapping[str, float], step: int, timestamp: int | None = None) -> list:
    """Metric entities for the finite values (MLflow would store NaN; we never send it)."""
    from mlflow.entities import Metric
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    return [Metric(k, float(v), ts, step) for k, v in values.items()
            if v is not None and math.isfinite(float(v))]


class MetricsBuffer(Callback):
    """Training callback: collects every epoch's metrics, sends them in background batches."""

    def __init__(self, client, run_id: str, uri: str, flush_seconds: float = 5.0,
                 use_helper: bool = True):
        self.client, self.run_id, self.uri = client, run_id, uri
        self.flush_seconds = float(flush_seconds)
        self.pending: list = []
        self.sent = 0
        self._last_send = self._last_beat = time.monotonic()
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: list[Future] = []
        self._helper = None
        if use_helper:
            try:
                self._helper = sender.shared()
            except OSError:
                self._helper = None

    def on_epoch_end(self, net, stats) -> None:
        # plain tuples (key, value, timestamp ms, step): MLflow entities are built off-thread
        ts, step = int(time.time() * 1000), stats.epoch
        self.pending.extend((k, v, ts, step) for k, v in stats.flat().items())
        if len(self.pending) >= BATCH_LIMIT or \
                time.monotonic() - self._last_send >= self.flush_seconds:
            self._send_pending()

    def on_train_end(self, net, result) -> None:
        self._send_pending()  # without waiting: the run's closing waits (flush)

    def _deliver(self, rows: list) -> None:
        if self._helper is not None:
            try:
                self._helper.send(self.uri, self.run_id, rows)
                return
            except (OSError, ValueError):  # the helper died: carry on in this process
                self._helper = None
        from mlflow.entities import Metric
        send_metrics(self.client, self.run_id, [Metric(*row) for row in rows])

    def _beat(self) -> None:
        try:
            self.client.set_tag(self.run_id, HEARTBEAT_TAG, str(int(time.time())))
        except Exception:  # a missed heartbeat is no reason to fail the job
            pass

    def _send_pending(self) -> None:
        pending, self.pending = self.pending, []
        self._last_send = now = time.monotonic()
        if not pending:
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="ffexp-mlflow-metrics")
        self._inflight.append(self._writer.submit(self._deliver, pending))
        self.sent += len(pending)
        if now - self._last_beat >= HEARTBEAT_SECONDS:
            self._last_beat = now
            self._writer.submit(self._beat)

    def flush(self) -> None:
        """Send what is pending and wait until every value is stored (safe to call again, e.g.
        from an interrupted run); raises if a batch could not be stored."""
        self._send_pending()
        inflight, self._inflight = self._inflight, []
        try:
            for future in inflight:
                future.result()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
        if self._helper is not None and inflight:
            errors = self._helper.sync()
            if errors:
                raise RuntimeError(f"MLflow did not store some metrics: {errors[0]}")
