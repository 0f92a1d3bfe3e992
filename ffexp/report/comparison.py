"""The comparison figures of a sweep, read back from its children and logged on its parent run.

Artifacts of the parent (ffexp.plots.comparison draws them): ``comparison/gradient_flow.png``,
``comparison/learning_curves.png`` and, when the children logged decision boundaries (2-feature
classification), ``comparison/decision_boundaries.png``; the parent's description
(``mlflow.note.content``) gets a section that shows them.

Sources, the cheapest that are correct:

- every FINISHED child's ``history.csv`` (one artifact download a run: every per-epoch metric
  at once; a failed or killed run has no final history and is left out);
- for one seed per group (the first in the report's run order), its last
  ``decision_boundary`` step image (drawn at the last epoch), else its
  ``plots/decision_boundary.png``.

The groups are the report's (ffexp.report.design.detect_group_keys, among the sweep's varied
override keys), labelled ``key=value, ...`` in the report's run order.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd

from .design import detect_group_keys, run_order

FOLDER = "comparison"
FILES = {"gradient_flow": "gradient_flow.png", "learning_curves": "learning_curves.png",
         "decision_boundaries": "decision_boundaries.png"}
#: MLflow's switch of its download progress bar
_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_BOUNDARY = re.compile(r"decision_boundary\+step\+(\d+)\+.*(?<!compressed)\.png$")


def read_history(path: Path) -> dict[str, np.ndarray]:
    """history.csv as columns (``epoch`` first), NaN where empty."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    names, body = rows[0], rows[1:]
    return {n: np.array([float(r[i]) if i < len(r) and r[i] else math.nan for r in body])
            for i, n in enumerate(names)}


def _local_root(artifact_uri: str) -> Path | None:
    """The run's artifact folder when it is on this machine (``file:`` or a path), else None."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file") and not parsed.netloc:
        return Path(url2pathname(parsed.path))
    return None


def fetch(client, run, path: str, dst: Path) -> Path | None:
    """One artifact of ``run``: read in place from a local artifact store, else downloaded
    into ``dst`` (without MLflow's progress bar); None when the run has none."""
    root = _local_root(run.info.artifact_uri or "")
    if root is not None:
        local = root / path
        return local if local.is_file() else None
    previous = os.environ.get(_BAR)
    os.environ[_BAR] = "false"
    try:
        return Path(client.download_artifacts(run.info.run_id, path, str(dst)))
    except Exception:
        return None
    finally:
        if previous is None:
            os.environ.pop(_BAR, None)
        else:
            os.environ[_BAR] = previous


def _boundary_image(client, run, dst: Path) -> np.ndarray | None:
    """The run's final decision boundary as an RGB(A) array, or None."""
    from matplotlib.image import imread
    root = _local_root(run.info.artifact_uri or "")
    try:
        images = [p.name for p in (root / "images").iterdir()] if root is not None else \
            [f.path for f in client.list_artifacts(run.info.run_id, "images")]
    except Exception:  # no images folder: no step images
        images = []
    last = max(((int(m.group(1)), p) for p in images
                if (m := _BOUNDARY.search(p.rsplit("/", 1)[-1]))), default=None)
    candidates = [last[1]] if last else []
    candidates.append("plots/decision_boundary.png")
    for path in candidates:
        local = fetch(client, run, path if "/" in path else f"images/{path}", dst)
        if local is not None:
            return imread(local)
    return None


def collect(client, experiment_id: str, parent_id: str, varied=()) -> dict:
    """The children's groups: ``{"groups": [(label, [history columns per seed])],
    "keys": group keys, "boundaries": [(label, image)], "metric": main metric,
    "title": the parent's name}``."""
    from ffexp.tracking.summary import children

    from .aggregate import main_metric
    runs = [r for r in children(client, experiment_id, parent_id)
            if r.info.status == "FINISHED"]
    if not runs:
        return {"groups": [], "keys": [], "boundaries": [], "metric": None, "title": ""}
    params = pd.DataFrame([r.data.params for r in runs]).fillna("").astype(str)
    keys = detect_group_keys(params, set(varied) or None)
    order = run_order(params, keys, [r.info.run_id for r in runs])
    label = lambda i: ", ".join(f"{k}={params[k].iat[i]}" for k in keys) or "all runs"  # noqa: E731
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(label(i), []).append(i)
    tasks = Counter(params["task"]) if "task" in params else Counter()
    metric = main_metric(tasks.most_common(1)[0][0]) if tasks else None
    out_groups, boundaries = [], []
    with tempfile.TemporaryDirectory(prefix="ffexp-comparison-") as tmp:
        for name, rows in groups.items():
            histories = []
            for i in rows:
                local = fetch(client, runs[i], "history.csv", Path(tmp, runs[i].info.run_id))
                if local is not None:
                    histories.append(read_history(local))
            if histories:
                out_groups.append((name, histories))
            image = _boundary_image(client, runs[rows[0]], Path(tmp, runs[rows[0]].info.run_id))
            if image is not None:
                boundaries.append((name, image))
    if metric and out_groups and not any(metric in h for _, hs in out_groups for h in hs):
        metric = "train/" + metric[4:]   # no validation split
    parent = client.get_run(parent_id)
    return {"groups": out_groups, "keys": keys, "boundaries": boundaries, "metric": metric,
            "title": parent.info.run_name or parent_id}


def draw(data: dict, folder: Path) -> list[Path]:
    """The comparison PNGs of ``collect``'s data in ``folder``; the paths written."""
    from ffexp.plots import comparison as cmp
    if not data["groups"]:
        return []
    legend = ", ".join(data["keys"])
    written = [cmp.save(cmp.gradient_flow(data["groups"], data["title"], legend),
                        folder / FILES["gradient_flow"]),
               cmp.save(cmp.learning_curves(data["groups"], data["metric"], data["title"], legend),
                        folder / FILES["learning_curves"])]
    if data["boundaries"]:
        written.append(cmp.save(cmp.decision_boundaries(data["boundaries"], data["title"]),
                                folder / FILES["decision_boundaries"]))
    return written


def note(parent_id: str, names: list[str], groups: int, seeds: list[int]) -> str:
    """The description's section: the figures as Markdown images served by the MLflow UI's
    artifact endpoint, each also named as an artifact path."""
    lines = [f"**Comparison** of {groups} group(s) ({min(seeds)}–{max(seeds)} seeds each), "
             f"artifacts `{FOLDER}/`:"]
    for name in names:
        lines.append(f"\n`{FOLDER}/{name}`\n\n"
                     f"![{name}](get-artifact?path={FOLDER}/{name}&run_uuid={parent_id})")
    return "\n".join(lines)


def log_comparison(client, experiment_id: str, parent_id: str, varied=()) -> list[str]:
    """Draw the comparison figures from the children, log them under ``comparison/`` of the
    parent and append their section to its description; the artifact names logged."""
    from ffexp.tracking.summary import NOTE
    from ffexp.tracking.tags import clip
    data = collect(client, experiment_id, parent_id, varied)
    with tempfile.TemporaryDirectory(prefix="ffexp-comparison-") as tmp:
        written = draw(data, Path(tmp))
        if not written:
            return []
        client.log_artifacts(parent_id, tmp, FOLDER)
    names = [p.name for p in written]
    seeds = [len(h) for _, h in data["groups"]]
    text = client.get_run(parent_id).data.tags.get(NOTE, "")
    client.set_tag(parent_id, NOTE, clip((text + "\n\n" if text else "")
                                         + note(parent_id, names, len(data["groups"]), seeds)))
    return names

