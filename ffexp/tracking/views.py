"""The step images of a sweep's children at first glance: a saved view of the experiment's runs
page (MLflow's "Views" menu), written when the sweep ends (ffexp._compat.mlflow_views).

The view selects the sweep's children (``tags.`mlflow.parentRunId` = '<parent id>'``), one row
each, sorted by name, and opens in the chart view on a "Step images" section: one half-width
card per image key (``decision_boundary``, ``gradient_flow``), every child's picture side by side
without the run's parameters, at the children's last epoch (the slider moves through the
others). MLflow's image card shows at most 10 runs, the first 10 rows of the table.
"""

from __future__ import annotations

from ffexp._compat.mlflow_views import images_state, save_view

from .images import TAG

#: the saved view's name after the parent's run name
SUFFIX = ": step images"


def image_keys(client, run_id: str) -> list[str]:
    """The step-image keys a run logged (``images/<key>+step+...``), sorted."""
    names = {f.path.rsplit("/", 1)[-1].split("+step+", 1)[0]
             for f in client.list_artifacts(run_id, "images")}
    return sorted(name.replace("~", "/") for name in names if name)


def sweep_images_view(client, experiment_id: str, parent_id: str) -> tuple[str, str] | None:
    """Save the view of the children's step images on the experiment: (its name, the query of
    its address after ``#/experiments/<id>/runs?``), or None when no child logged images or the
    installed MLflow's UI is not one ffexp writes views for."""
    children = client.search_runs([experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                  max_results=1000)
    with_images = [r for r in children if r.data.tags.get(TAG)]
    if not with_images:
        return None
    keys = image_keys(client, with_images[0].info.run_id)
    if not keys:
        return None
    last = max(int(r.data.params.get("epochs", 0) or 0) for r in with_images)
    name = client.get_run(parent_id).info.run_name + SUFFIX
    state = images_state(f"tags.`mlflow.parentRunId` = '{parent_id}'", keys, last)
    query = save_view(client, experiment_id, parent_id, name, state)
    return (name, query) if query else None
