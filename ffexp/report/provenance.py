"""Where a report's runs came from, split in two by what a rerun of the sweep changes.

report.md keeps what stays the same when the sweep is rerun with the same seeds and code
(selection in words, experiment, the sweep's command line, ffexp version, counts), so the rerun
regenerates it byte for byte. provenance.md (and the end of report.html) carries the rest: run
ids, the sweep's parent run, id and time, git commit(s) and dirty flag, run times, the tracking
store and the exact command that regenerates the report (``--sweep <id>``).
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .design import SEED
from ffexp.tracking.numeric_env import FIELDS, PREFIX

from .render import code, esc, fmt
from .select import Selection, sweep_command

#: what report.md says of provenance.md, in one line
HOLDS = ("what changes when the sweep is rerun: the run ids, the sweep's parent run, id and "
         "date-time, the git commit(s) and dirty flag, the numeric environment (numpy, BLAS "
         "library, version and kernel, CPU, dtype), the run times, the tracking store and the "
         "exact command that regenerates this report")
#: the numeric-environment lines a regenerated report is checked against (``changed_env``)
CHECKED = ("blas", "blas_version", "blas_kernel")
LINK_MD = f"Provenance: [provenance.md](provenance.md) holds {HOLDS}."
LINK_HTML = f"Provenance: the section at the end of this page holds {HOLDS}."


def counted(runs: pd.DataFrame, col: str) -> str:
    """```v` (n runs), …`` over the distinct values of a column, sorted."""
    if col not in runs:
        return "(not recorded)"
    vc = runs[col].fillna("(none)").astype(str).value_counts()
    return ", ".join(f"{code(v)} ({vc[v]} runs)" for v in sorted(vc.index))


def experiment_names(sel: Selection) -> str:
    return ", ".join(sorted(set(sel.experiments.values())))  # plain text: esc() it in a block


def stable_items(sel: Selection) -> list[str]:
    """The selection as report.md states it: the same words for a rerun of the sweep."""
    items = ["Selection: " + ("; ".join(sel.stable) or "(none)"),
             f"Experiment(s): {esc(experiment_names(sel))}"]
    if sel.parent:
        command = sweep_command(sel.parent["tags"])
        items.append(f"Sweep command line: {code(command) if command else '(not recorded)'}")
    return items + [f"ffexp version(s) of the runs: {counted(sel.runs, 'tags.ffexp.version')}",
                    f"Runs: {len(sel.runs)}"]


def regenerate_command(sel: Selection, uri: str, metric: str, at: str,
                       group_by: list[str], output: str | None, extra: list[str] = ()) -> str:
    """The exact ffexp-report command that selects these runs again (``--sweep <id>``), with
    the options ``extra`` (--margin, --probe-chaos)."""
    cmd = ["ffexp-report", "--tracking-uri", uri, *sel.args, "--metric", metric, "--at", at,
           *extra]
    if group_by:
        cmd += ["--group-by", ",".join(group_by)]
    if output:
        cmd += ["--output", output]
    return shlex.join(cmd)


def _utc(ms) -> str:
    if ms is None or pd.isna(ms):
        return "—"
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(runs: pd.DataFrame) -> pd.Series:
    if "start_time" not in runs or "end_time" not in runs:
        return pd.Series(float("nan"), index=runs.index)
    return (runs["end_time"] - runs["start_time"]).dt.total_seconds()


def _items(sel: Selection, uri: str) -> list[str]:
    runs = sel.runs
    items = [f"Tracking store: {code(uri)}", "Selection: " + "; ".join(map(esc, sel.criteria)),
             "Experiment(s): " + ", ".join(f"{esc(n)} ({code(i)})"
                                           for i, n in sel.experiments.items())]
    if sel.parent:
        p = sel.parent
        sweep_id = p["tags"].get("ffexp.sweep_id")
        items.append(f"Sweep parent run: {esc(p['run_name'])} ({code(p['run_id'])})"
                     + (f", sweep id {code(sweep_id)}" if sweep_id else ""))
        seconds = ((p["end_time"] - p["start_time"]) / 1000
                   if p.get("end_time") and p.get("start_time") else None)
        items.append(f"Sweep started {_utc(p.get('start_time'))}, ended {_utc(p.get('end_time'))}"
                     + (f" ({seconds:.1f} s)" if seconds is not None else ""))
    total = _seconds(runs).sum(min_count=1)
    return items + [f"Git commit(s): {counted(runs, 'tags.mlflow.source.git.commit')}",
                    f"Uncommitted changes (git_dirty): {counted(runs, 'tags.ffexp.git_dirty')}",
                    *env_items(runs),
                    f"Runs: {len(runs)}, {fmt(total)} s of run time in all"]


def env_items(runs: pd.DataFrame) -> list[str]:
    """One line per numeric-environment tag (ffexp.tracking.numeric_env): ``<what>: `v` (n
    runs)``; OPENBLAS_CORETYPE ``(not set)`` where no run had it."""
    out = []
    for name, what in FIELDS.items():
        col = f"tags.{PREFIX}{name}"
        if name == "openblas_coretype" and (col not in runs or runs[col].isna().all()):
            out.append(f"{what}: (not set)")
        else:
            out.append(f"{what}: {counted(runs, col)}")
    return out


def recorded_env(provenance_md: Path) -> dict[str, str] | None:
    """The numeric-environment lines (``CHECKED``) a provenance.md names, as their text after
    the colon; None when the file does not exist. A line it lacks maps to "(not recorded)"."""
    try:
        text = provenance_md.read_text(encoding="utf-8")
    except OSError:
        return None
    out = {}
    for name in CHECKED:
        found = re.search(rf"^- {re.escape(FIELDS[name])}: (.*)$", text, re.M)
        out[name] = found.group(1).strip() if found else "(not recorded)"
    return out


def changed_env(old: dict[str, str] | None, runs: pd.DataFrame) -> str | None:
    """One line when a previous provenance.md names another BLAS library, version or kernel
    than these runs; None when it names the same, or there was none."""
    if old is None:
        return None
    new = {name: counted(runs, f"tags.{PREFIX}{name}") for name in CHECKED}
    if new == old:
        return None
    differ = [n for n in CHECKED if new[n] != old[n]]
    said = "; ".join(f"{FIELDS[n]} {old[n]} -> {new[n]}" for n in differ)
    return (f"the previous provenance.md in this folder names another numeric environment "
            f"({said.replace('`', '')}): values that depend on the last bits may differ")


def _run_table(sel: Selection, params: pd.DataFrame, keys: list[str]):
    """Run name, factors, seed, run id (and commit or dirty flag where they differ), seconds:
    in the order of report.md's run table."""
    runs = sel.runs
    extra = [(c, h) for c, h in (("tags.mlflow.source.git.commit", "git commit"),
                                 ("tags.ffexp.git_dirty", "git dirty"))
             if c in runs and runs[c].fillna("").nunique() > 1]
    names = runs.get("tags.mlflow.runName", runs["run_id"]).fillna("")
    seconds = _seconds(runs)
    header = ["run", *map(esc, keys), "seed", "run id", *(h for _, h in extra), "seconds"]
    rows = [[esc(names.iat[i]), *(esc(params[k].iat[i]) for k in keys),
             esc(params[SEED].iat[i]) if SEED in params else "", code(runs["run_id"].iat[i]),
             *(esc(runs[c].iat[i]) for c, _ in extra), fmt(seconds.iat[i])]
            for i in range(len(runs))]
    return header, rows


def blocks(sel: Selection, params: pd.DataFrame, keys: list[str], uri: str, regen: str,
           title: str | None) -> list:
    """provenance.md's blocks; with ``title`` None, the section that ends report.html."""
    top = [("h", 1, esc(title)), ("p", "The volatile part of [report.md](report.md): " + HOLDS + ".")
           ] if title else [("h", 2, "Provenance")]
    sub = 2 if title else 3
    return [*top, ("ul", _items(sel, uri)), ("h", sub, "Runs"),
            ("table", *_run_table(sel, params, keys)),
            ("h", sub, "Regenerate"), ("p", "Exactly these runs, with the same options:"),
            ("code", regen)]
