"""What the studies' analysis scripts share: the runs of a study's latest sweep, their per-epoch
histories, and deterministic Markdown tables and PNG figures.

Each ``experiments/<study>/analyze.py`` computes the few numbers its verdict needs that
ffexp-report does not (ratios at the first epoch, smoothness, epochs to a target…) and writes
``analysis.md`` (+ PNG) next to the study's ``report/report.md``. It selects runs exactly as
ffexp-report does with no selection option — the most recent sweep in the store — through
``ffexp.report.select`` (``mlflow.search_runs`` and the store's metric histories).

Outputs carry no run id, time or path, so that rerunning a script on the same store rewrites
the same bytes. The scripts are run as files (``python experiments/<study>/analyze.py``), so each
puts this folder on ``sys.path`` to import this module.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ffexp.report.select import ReportError, connect, fetch_histories, select_runs

#: PNG metadata without the matplotlib version or a timestamp: identical bytes on a rerun
PNG_META = {"Software": None}


def parse_args(study_dir: Path, description: str) -> argparse.Namespace:
    """--tracking-uri (default: the study's own store) and --output (default: its report/)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--tracking-uri", default=f"sqlite:///{study_dir / 'mlflow.db'}",
                   help="MLflow store holding the study's sweep (default: %(default)s)")
    p.add_argument("--output", type=Path, default=study_dir / "report",
                   help="folder for analysis.md and its figures (default: %(default)s)")
    return p.parse_args()


def load_sweep(uri: str, keys: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, histories) of the most recent sweep in ``uri``.

    ``runs``: one row per job run (columns run_id, the params as ``params.<name>``, the outcome
    tag as ``outcome``), sorted by run id; ``histories``: columns run_id, key, step, value."""
    try:
        client = connect(uri)
        sel = select_runs(client)
    except ReportError as err:
        raise SystemExit(f"analysis: error: {err}") from None
    runs = sel.runs.copy()
    runs["outcome"] = runs.get("tags.ffexp.outcome", pd.Series("unknown", index=runs.index))
    histories = fetch_histories(client, list(runs["run_id"]), list(keys))
    return runs, histories


def wide(histories: pd.DataFrame, key: str) -> pd.DataFrame:
    """One metric's histories as a frame: index step (epoch), one column per run id."""
    h = histories[histories["key"] == key]
    return h.pivot(index="step", columns="run_id", values="value").sort_index()


def at_step(histories: pd.DataFrame, key: str, step: int) -> pd.Series:
    """run_id -> the value of ``key`` at ``step`` (runs without it are absent)."""
    h = histories[(histories["key"] == key) & (histories["step"] == step)]
    return h.set_index("run_id")["value"]


def last(histories: pd.DataFrame, key: str) -> pd.Series:
    """run_id -> the value of ``key`` at its last logged step."""
    h = histories[histories["key"] == key].sort_values(["run_id", "step"])
    return h.groupby("run_id")["value"].last()


def fmt(x: float, digits: int = 4) -> str:
    """A number for a table: 4 significant digits, scientific when tiny or huge, '—' if NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def mean_std(values: Iterable[float]) -> str:
    """'mean ± std (n)' over seeds, NaNs left out and counted."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    ok = v[np.isfinite(v)]
    if not len(ok):
        return "—"
    s = f"{fmt(float(ok.mean()))} ± {fmt(float(ok.std(ddof=1)))}" if len(ok) > 1 else fmt(float(ok[0]))
    return s + (f" ({len(ok)} of {len(v)})" if len(ok) < len(v) else "")


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(output: Path, title: str, blocks: Sequence[str], name: str = "analysis.md") -> Path:
    output.mkdir(parents=True, exist_ok=True)
    path = output / name
    path.write_text(f"# {title}\n\n" + "\n\n".join(b.strip() for b in blocks) + "\n")
    print(f"analysis: wrote {path}")
    return path


def save_figure(fig, path: Path) -> Path:
    """The figure, laid out tight, as a PNG with no timestamp or version in it (folder made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata=PNG_META)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def depth(hidden_sizes: str) -> int:
    """L, the number of layers (the input not counted), from the ``hidden_sizes`` param."""
    text = str(hidden_sizes).strip("[]() ")
    return len([s for s in text.split(",") if s.strip()]) + 1


def first_step(histories: pd.DataFrame, key: str, ok) -> pd.Series:
    """run_id -> the first step (epoch) at which ``ok(value)`` holds; NaN if never."""
    h = histories[histories["key"] == key].sort_values(["run_id", "step"])
    hit = h[ok(h["value"])].groupby("run_id")["step"].min()
    return hit.reindex(sorted(set(h["run_id"]))).astype(float)


def reached(values: Iterable[float]) -> str:
    """'mean ± std' of the epochs of the runs that reached a target, and how many did."""
    v = np.asarray(list(values), dtype=float)
    ok = v[np.isfinite(v)]
    if not len(ok):
        return f"never (0 of {len(v)})"
    spread = f" ± {fmt(float(ok.std(ddof=1)))}" if len(ok) > 1 else ""
    return f"{fmt(float(ok.mean()))}{spread} ({len(ok)} of {len(v)})"


def param(runs: pd.DataFrame, *names: str) -> pd.Series:
    """The first of the params ``names`` that the runs carry (``params.<name>``), as strings;
    '' where none is logged. Lets a script read e.g. ``init.bias`` however the tracking names it."""
    for name in names:
        col = f"params.{name}"
        if col in runs:
            return runs[col].fillna("").astype(str)
    return pd.Series("", index=runs.index)


def outcomes(sel: pd.DataFrame) -> str:
    """'finished 2, diverged 1 (epoch 3)': the outcome tags of some runs, with divergence epochs."""
    text = ", ".join(f"{k} {v}" for k, v in sorted(sel["outcome"].value_counts().items()))
    diverged = sel.get("tags.ffexp.diverged_epoch")
    if diverged is not None and diverged.notna().any():
        text += " (epoch " + ", ".join(sorted(diverged.dropna().astype(str))) + ")"
    return text


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of the finite positive values (NaN if there are none)."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.mean(np.log(v)))) if len(v) else float("nan")


def mean_curve(histories: pd.DataFrame, key: str, ids: Sequence[str]) -> pd.Series:
    """step -> the mean over the runs ``ids`` of ``key`` (the runs present at that step)."""
    w = wide(histories, key)
    return w[[i for i in ids if i in w.columns]].mean(axis=1)
