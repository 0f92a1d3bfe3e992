"""A run's metric values written into MLflow's own tables with SQLAlchemy Core, as
``SqlAlchemyStore.log_batch`` writes them, without its ORM.

What is written, for rows ``(key, value, timestamp ms, step)`` of one run (MLflow 3.18's
``_log_metrics`` and ``_update_latest_metrics_if_necessary``, copied rule for rule):

- ``value`` as MLflow's client converts it (``convert_metric_value_to_float_if_possible``) and
  validates it (``_validate_metric``: the key's name, a number, timestamp >= 0, a numeric step);
- stored as the store's ``sanitize_metric_value`` stores it: NaN as ``value = 0, is_nan = true``,
  +inf as ``1.7976931348623157e308``, -inf as ``-1.7976931348623157e308``;
- one row in ``metrics`` per distinct ``(key, timestamp, step, value, is_nan)`` (its primary key
  minus the run): a value already stored is skipped (``INSERT ... ON CONFLICT DO NOTHING``, where
  MLflow catches the IntegrityError and inserts the rest);
- ``latest_metrics[key]`` = the greatest ``(step, timestamp, value)`` of what was stored and the
  new rows, compared strictly in the rows' order (the first of equals stays), by one upsert per
  key (``ON CONFLICT (key, run_uuid) DO UPDATE ... WHERE`` the new one is greater);
- in one transaction of the store's own session maker (its engine, its SQLite pragmas, its
  errors: "database is locked" is an MlflowException TEMPORARILY_UNAVAILABLE), which first checks
  that the run exists and is active (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE otherwise).

Where (``choose``): an ``SqlAlchemyStore`` (exactly: not the workspace-aware one) on SQLite or
PostgreSQL, of an MLflow release in ``TESTED_MLFLOW``, whose database is at an alembic revision
in ``TESTED_REVISIONS``: the releases and schema the tests ran on. Anywhere else (a tracking
server, MySQL, another release or revision, ``FFEXP_MLFLOW_CORE=0`` or ``FFEXP_PUBLIC_ONLY=1`` in
the environment) the
caller uses MLflow's public ``log_batch``; an untested release or revision is warned about once
per process. Rows that MLflow would link to a LoggedModel (an active model is set) are not
written here either (``CoreMetrics.write`` returns False).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger("ffexp.compat")

#: MLflow releases (major, minor) whose SqlAlchemyStore the tests compared this writer against
TESTED_MLFLOW = frozenset({(3, 18)})
#: alembic revisions of the store's schema the tests wrote and read back (MLflow 3.18.0's head)
TESTED_REVISIONS = frozenset({"f4a9b2c7d1e6"})
#: the store's dialects the tests cover
DIALECTS = ("sqlite", "postgresql")
#: ``FFEXP_MLFLOW_CORE=0`` keeps MLflow's log_batch everywhere
ENV_SWITCH = "FFEXP_MLFLOW_CORE"


@dataclass(frozen=True)
class Choice:
    """How a store's metrics are written: ``writer`` (None: MLflow's log_batch) and why."""
    writer: "CoreMetrics | None"
    reason: str

    @property
    def line(self) -> str:
        """The job log's line saying which path writes the metrics."""
        how = "SQLAlchemy Core into MLflow's tables" if self.writer else "MLflow's log_batch"
        return f"metrics are written by {how} ({self.reason})"


_CHOICES: dict[str, Choice] = {}
_LOCK = threading.Lock()
_WARNED: set[str] = set()


def choose(client, uri: str) -> Choice:
    """The path for the store of ``client`` (an MlflowClient, or a wrapper with ``unwrapped``)
    at ``uri``, decided once per process and URI."""
    choice = _CHOICES.get(uri)
    if choice is None:
        with _LOCK:
            choice = _CHOICES.get(uri) or _CHOICES.setdefault(uri, _choose(client, uri))
    return choice


def _warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        log.warning("ffexp writes metrics with MLflow's log_batch: %s", reason)


def _choose(client, uri: str) -> Choice:
    if os.environ.get(ENV_SWITCH, "1").strip() in ("0", "false", "no", "off"):
        return Choice(None, f"{ENV_SWITCH}={os.environ[ENV_SWITCH]}")
    from ffexp._compat.gate import PUBLIC_ONLY_ENV
    if os.environ.get(PUBLIC_ONLY_ENV) == "1":
        return Choice(None, f"{PUBLIC_ONLY_ENV}=1")
    if uri.startswith(("http://", "https://")):
        return Choice(None, f"a tracking server, {uri}")
    import mlflow
    release = tuple(int(p) for p in mlflow.__version__.split(".")[:2] if p.isdigit())
    if release not in TESTED_MLFLOW:
        reason = (f"MLflow {mlflow.__version__} is not a release the tests cover "
                  f"({', '.join('%d.%d' % r for r in sorted(TESTED_MLFLOW))})")
        _warn_once(reason)
        return Choice(None, reason)
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        store = getattr(client, "unwrapped", client)._tracking_client.store
        store.engine, store.ManagedSessionMaker, store.sanitize_metric_value
    except (ImportError, AttributeError) as err:  # MLflow's internals moved
        reason = f"MLflow's store has moved ({type(err).__name__}: {err})"
        _warn_once(reason)
        return Choice(None, reason)
    if type(store) is not SqlAlchemyStore:
        return Choice(None, f"a {type(store).__name__}, not MLflow's SqlAlchemyStore")
    if store.db_type not in DIALECTS:
        return Choice(None, f"a {store.db_type} database (tested: {', '.join(DIALECTS)})")
    import sqlalchemy
    try:
        with store.engine.connect() as conn:
            revision = conn.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as err:  # no alembic table: not a schema MLflow made
        reason = f"the store's alembic revision is unreadable ({type(err).__name__})"
        _warn_once(reason)
        return Choice(None, reason)
    if revision not in TESTED_REVISIONS:
        reason = (f"the store's alembic revision {revision} is not one the tests cover "
                  f"({', '.join(sorted(TESTED_REVISIONS))})")
        _warn_once(reason)
        return Choice(None, reason)
    return Choice(CoreMetrics(store),
                  f"{store.db_type}, alembic revision {revision}, MLflow {mlflow.__version__}")


class CoreMetrics:
    """Writes metric rows of a run into ``metrics`` and ``latest_metrics`` of one
    SqlAlchemyStore, by MLflow's rules (see the module doc); thread-safe."""

    def __init__(self, store) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun
        from sqlalchemy import and_, or_
        from sqlalchemy.dialects import postgresql, sqlite
        self.store = store
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[store.db_type]
        metrics, latest = SqlMetric.__table__, SqlLatestMetric.__table__
        self._runs = SqlRun.__table__
        self._insert = insert(metrics).on_conflict_do_nothing()
        upsert = insert(latest)
        new, old = upsert.excluded, latest.c
        newer = or_(new.step > old.step,
                    and_(new.step == old.step,
                         or_(new.timestamp > old.timestamp,
                             and_(new.timestamp == old.timestamp, new.value > old.value))))
        self._upsert = upsert.on_conflict_do_update(
            index_elements=[old.key, old.run_uuid],
            set_={c: new[c] for c in ("value", "timestamp", "step", "is_nan")}, where=newer)
        self._names: set[str] = set()  # metric names MLflow's validation accepted

    def _checked(self, rows: Sequence[tuple]) -> list[tuple]:
        """(key, stored value, timestamp, step, is_nan) per row, validated and sanitized as
        MLflow's client and store do."""
        from mlflow.tracking.metric_value_conversion_utils import \
            convert_metric_value_to_float_if_possible as to_float
        from mlflow.utils.validation import _is_numeric, _validate_metric
        out = []
        sanitize = self.store.sanitize_metric_value
        for i, (key, value, timestamp, step) in enumerate(rows):
            value = to_float(value)
            if key not in self._names or not (
                    _is_numeric(value) and _is_numeric(timestamp) and timestamp >= 0
                    and _is_numeric(step)):
                _validate_metric(key, value, timestamp, step,
                                 path=f"metrics[{i}]")  # as log_batch validates
                self._names.add(key)
            is_nan, stored = sanitize(value)
            out.append((key, stored, timestamp, step, is_nan))
        return out

    def write(self, run_id: str, rows: Sequence[tuple]) -> bool:
        """Store ``rows`` (key, value, timestamp ms, step) as metrics of the run in one
        transaction; False, writing nothing, if MLflow would link them to an active
        LoggedModel (the caller then uses log_batch)."""
        from mlflow.tracking.fluent import get_active_model_id
        if not rows:
            return True
        if get_active_model_id():
            return False
        checked = self._checked(rows)
        values, seen, latest = [], set(), {}
        for key, value, timestamp, step, is_nan in checked:
            if (key, timestamp, step, value, is_nan) in seen:
                continue
            seen.add((key, timestamp, step, value, is_nan))
            values.append({"key": key, "value": value, "timestamp": timestamp, "step": step,
                           "is_nan": is_nan, "run_uuid": run_id})
            best = latest.get(key)
            if best is None or (step, timestamp, value) > (best["step"], best["timestamp"],
                                                           best["value"]):
                latest[key] = values[-1]
        self._transaction(run_id, values, [latest[k] for k in sorted(latest)])
        return True

    def _transaction(self, run_id: str, values: list[dict], latest: list[dict]) -> None:
        from mlflow.entities import LifecycleStage
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
        from sqlalchemy import select
        with self.store.ManagedSessionMaker(read_only=False) as session:
            stage = session.execute(select(self._runs.c.lifecycle_stage)
                                    .where(self._runs.c.run_uuid == run_id)).scalar()
            if stage is None:
                raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
            if stage != LifecycleStage.ACTIVE:
                raise MlflowException(f"The run {run_id} must be in the 'active' state. "
                                      f"Current state is {stage}.", INVALID_PARAMETER_VALUE)
            session.execute(self._insert, values)
            session.execute(self._upsert, latest)  # keys sorted: one lock order (PostgreSQL)
