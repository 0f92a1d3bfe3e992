"""The per-epoch metrics, buffered and sent to MLflow in few writes, off the training thread
and, for a long run, through ffexp.tracking.sender, off the training process.

One ``log_metric`` call per value costs ~2.5 ms on SQLite; a ``log_batch`` of 1,000 values
60-200 ms, most of it MLflow's ORM, which holds the GIL. So the callback keeps the values of
each epoch (``EpochStats.flat()``: finite values only, step = epoch) and hands them to a writer
thread. A long run (more than IN_PROCESS_ROWS values expected: an epoch's count × the
epochs, or still going after ``flush_seconds``) starts the helper process and pipes it a full
batch at a time or at least every ``flush_seconds`` (a long run is visible live and a killed
run keeps most of its history), so the ORM runs on the other core. A short run (most jobs of a
sweep, the default run) writes its values at the end from the writer thread of this process,
or through a helper an earlier job of the process started: a second interpreter importing
MLflow (~1-2 s of CPU) would cost more than the writes.
``flush()`` (when the run is closed: finished, failed or killed) sends the rest and waits until
everything is stored. If the helper cannot run, or dies, the writer thread calls log_batch
itself; what a dead helper held and did not store is counted (``unstored``: the values sent
minus those read back) and the run says so (ffexp.tracking.run: tag ``ffexp.metrics_lost``).

The same flush path advances the run's heartbeat tag (ffexp.tracking.stale), at most every
HEARTBEAT_SECONDS: one set_tag off the training thread, nothing per epoch.

Every write of values goes through ``store_rows``: on a SQLite or PostgreSQL store of a tested
MLflow release and schema, ffexp._compat.mlflow_metrics writes them into MLflow's ``metrics``
and ``latest_metrics`` tables with SQLAlchemy Core, by log_batch's rules, several times cheaper
than its ORM; elsewhere (a tracking server, ...) ``log_batch``. The job's log says which, once.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Mapping

from ffexp.nn import Callback

from ffexp._compat import mlflow_metrics

from . import sender
from .retry import call_with_retries
from .stale import HEARTBEAT_SECONDS, HEARTBEAT_TAG

#: MLflow's limit of metrics per log_batch request
BATCH_LIMIT = sender.BATCH_LIMIT
#: a run expected to log more values than this streams them to the helper process
IN_PROCESS_ROWS = 10 * BATCH_LIMIT
#: rows written in one transaction by the Core path (a bound on how long it holds SQLite's lock)
CORE_ROWS = 10 * BATCH_LIMIT
#: batches handed over and not yet stored, beyond which an epoch's end waits for the oldest:
#: a training that logs faster than the store takes values (~7,000/s on SQLite) runs at the
#: store's pace instead of queueing without bound, so that a run stopped early (a SLURM time
#: limit, Ctrl-C) stores what is queued in seconds, before it is killed
MAX_QUEUED = 4

log = logging.getLogger("ffexp")


def job_log() -> str | None:
    """The file of the job's log (Hydra's file handler on the root logger), if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def send_metrics(client, run_id: str, metrics: list) -> None:
    """log_batch in chunks of at most BATCH_LIMIT values, in this process."""
    for i in range(0, len(metrics), BATCH_LIMIT):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH_LIMIT], synchronous=True)


def store_rows(client, uri: str, run_id: str, rows: list) -> None:
    """Store rows (key, value, timestamp ms, step) of the run: with SQLAlchemy Core where
    ffexp._compat.mlflow_metrics.choose allows it (retried like the client's calls on SQLite's
    lock errors), else log_batch; the same values, steps and latest metrics either way.
    Nothing while the job's client spools (ffexp.tracking.spool: its journal has the rows), and
    a store that is away makes it spool."""
    if getattr(client, "spooling", False):
        return
    try:
        writer = mlflow_metrics.choose(client, uri).writer
        for i in range(0, len(rows), CORE_ROWS):
            chunk = rows[i:i + CORE_ROWS]
            if writer is None or not call_with_retries(writer.write, run_id, chunk):
                from mlflow.entities import Metric
                send_metrics(client, run_id, [Metric(*row) for row in chunk])
    except Exception as err:
        if not _absorbed(client, err):
            raise


def _absorbed(client, err: BaseException, probe: bool = False) -> bool:
    """Whether the job's client took ``err`` as the store being away (it spools from now on;
    ffexp.tracking.spool.SpoolingClient.absorb)."""
    absorb = getattr(client, "absorb", None)
    return absorb is not None and absorb(err, probe)


def _journal(client, rows) -> None:
    """The job's client keeps every value it was handed (ffexp.tracking.spool)."""
    note = getattr(client, "journal_rows", None)
    if note is not None:
        note(rows)


def store_metrics(client, uri: str, run_id: str, metrics: list) -> None:
    """Metric entities: those linked to a LoggedModel or a dataset by log_batch (which writes
    the links), the others by ``store_rows``."""
    linked = [m for m in metrics if m.model_id or m.dataset_name or m.dataset_digest]
    send_metrics(client, run_id, linked)
    store_rows(client, uri, run_id, [(m.key, m.value, m.timestamp, m.step) for m in metrics
                                     if not (m.model_id or m.dataset_name or m.dataset_digest)])


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
        self.batches = 0  # handed to the writer
        self._last_send = self._last_beat = time.monotonic()
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: list[Future] = []
        self.use_helper = use_helper
        #: the helper process, once this run sent a batch through it
        self._helper = None
        self._log = job_log()
        self._since_sync = 0  # values handed to the helper since its last sync
        self._epochs = 0
        self._long = False  # more than IN_PROCESS_ROWS values expected
        self._path_logged = False
        #: the keys of the values handed over (for ``unstored``)
        self._keys: set[str] = set()
        #: whether the helper process stopped while it held values of this run
        self.helper_lost = False

    def on_train_begin(self, net, info) -> None:
        self._epochs = int(info.get("epochs") or 0)

    def on_epoch_end(self, net, stats) -> None:
        # plain tuples (key, value, timestamp ms, step): MLflow entities are built off-thread
        ts, step = int(time.time() * 1000), stats.epoch
        values = stats.flat()
        self._long = self._long or len(values) * self._epochs > IN_PROCESS_ROWS
        self.pending.extend((k, v, ts, step) for k, v in values.items())
        self._keys.update(values)
        streaming = self._long or self._helper is not None
        if (streaming and len(self.pending) >= BATCH_LIMIT) or \
                time.monotonic() - self._last_send >= self.flush_seconds:
            self._send_pending(start_helper=True)

    def on_train_end(self, net, result) -> None:
        self._send_pending()  # without waiting: the run's closing waits (flush)

    def _pick_helper(self, start: bool) -> None:
        """Use this process's helper if one runs; start it for a run that outlives a flush."""
        if self._helper is not None or not self.use_helper:
            return
        try:
            self._helper = sender.shared() if start else sender.running()
        except OSError:
            self.use_helper = False

    def log_path(self) -> None:
        """One line in the job's log: which path writes this run's metrics (Core or
        log_batch, and why), the helper process's too (same MLflow, same store)."""
        if not self._path_logged:
            self._path_logged = True
            log.info(mlflow_metrics.choose(self.client, self.uri).line)

    def store_final(self, metrics: list) -> None:
        """Store metric entities now, in this thread (the values measured once, at the end)."""
        self.log_path()
        _journal(self.client, [(m.key, m.value, m.timestamp, m.step, m.model_id)
                               for m in metrics])
        store_metrics(self.client, self.uri, self.run_id, metrics)

    def _deliver(self, rows: list) -> None:
        self.log_path()
        if self._helper is not None and not getattr(self.client, "spooling", False):
            try:
                self._helper.send(self.uri, self.run_id, rows, self._log)
                self._since_sync += len(rows)
                return
            except (OSError, ValueError) as err:  # the helper died: carry on in this process
                self._helper_lost(err)
        store_rows(self.client, self.uri, self.run_id, rows)

    def _helper_lost(self, err: BaseException) -> None:
        log.warning("the metrics helper stopped (%s: %s); up to %d metric value(s) sent to it "
                    "since its last sync may not be stored; the rest is written from the "
                    "training process", type(err).__name__, err, self._since_sync)
        self.helper_lost = self.helper_lost or self._since_sync > 0
        self._helper, self.use_helper, self._since_sync = None, False, 0

    def unstored(self) -> int:
        """After ``flush``: how many of the values handed over are not in the store (the
        values a stopped helper held: sent minus stored, counted by reading the run's metric
        histories back, once); 0 when the helper never stopped holding values."""
        if not self.helper_lost:
            return 0
        stored = sum(len(self.client.get_metric_history(self.run_id, key))
                     for key in sorted(self._keys))
        return max(self.sent - stored, 0)

    def _beat(self) -> None:
        try:
            self.client.set_tag(self.run_id, HEARTBEAT_TAG, str(int(time.time())))
        except Exception:  # a missed heartbeat is no reason to fail the job
            pass

    def _send_pending(self, start_helper: bool = False) -> None:
        pending, self.pending = self.pending, []
        self._last_send = now = time.monotonic()
        if not pending:
            return
        _journal(self.client, pending)
        self._pick_helper(start_helper)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="ffexp-mlflow-metrics")
        self._inflight.append(self._writer.submit(self._deliver, pending))
        self.sent += len(pending)
        self.batches += 1
        # a stored batch is forgotten (a failed one is kept: flush raises its error)
        self._inflight = [f for f in self._inflight if not f.done() or f.exception()]
        queued = [f for f in self._inflight if not f.done()]
        if len(queued) > MAX_QUEUED:
            wait(queued[:len(queued) - MAX_QUEUED])
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
        if self._helper is not None and self._since_sync:
            try:
                errors = self._helper.sync()
            except (OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
                self._helper_lost(err)
                return
            self._since_sync = 0
            if errors:
                err = RuntimeError(f"MLflow did not store some metrics: {errors[0]}")
                if not _absorbed(self.client, err, probe=True):
                    raise err
