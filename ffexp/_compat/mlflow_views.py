"""A saved view of MLflow's experiment page, written by ffexp: the runs a filter selects, sorted
by name, in the chart view with the step images first and without the run parameters.

MLflow 3.18's UI keeps a saved view (its "Views" menu on an experiment's runs page, opened by
``#/experiments/<id>/runs?viewStateShareKey=<view id>``) in the experiment tag
``mlflow.sharedViewState.<view id>``, a JSON envelope ``{"name", "createdAt", "updatedAt"
(milliseconds), "state"}``; ``state`` is the JSON of the page's search facets (``searchFilter``,
``orderByKey``, ``orderByAsc``) and chart settings (``compareRunCharts``: the cards,
``compareRunSections``: their sections, with ``columns`` (cards a row) and ``cardHeight``).
An image card (``type: IMAGE``) has ``imageKeys``, ``step`` and ``showRunParams``: MLflow's
default ``true`` prints every param of each run above its picture, which pushes the picture out
of the card. The format is the UI's own, not an API; ``save_view`` writes it only under the
MLflow series in ``TESTED`` and otherwise writes nothing (returns None), warning once.

The table of a saved view nests a sweep's children under their parent only when it is sorted by
start time (MLflow's ``nestChildren``); sorted by run name, the children are rows of their own,
so the chart view shows their images.
"""

from __future__ import annotations

import json
import time

from .gate import supported

#: the MLflow (major, minor) series whose UI reads this format (checked in a browser by
#: tests/tracking/test_browser.py)
TESTED = ((3, 18),)
TAG_PREFIX = "mlflow.sharedViewState."
#: the card height (px) of the step images' section: a run's name and a 256-px thumbnail fit
CARD_HEIGHT = 420


def images_state(search_filter: str, image_keys: list[str], step: int) -> dict:
    """The view's state: runs matching ``search_filter`` sorted by name (one row each, none
    nested), and a first section "Step images" of one card per key in ``image_keys`` (two a
    row) at ``step``, without run parameters; MLflow adds the metric charts after it."""
    section = "ffexp-step-images"
    charts = [{"uuid": f"ffexp-image-{key}", "type": "IMAGE", "imageKeys": [key], "step": step,
               "showRunParams": False, "metricSectionId": section, "deleted": False,
               "isGenerated": False, "displayName": key, "runsCountToCompare": 10}
              for key in image_keys]
    return {"searchFilter": search_filter, "orderByKey": "attributes.run_name",
            "orderByAsc": True, "compareRunCharts": charts,
            "compareRunSections": [{"uuid": section, "name": "Step images", "display": True,
                                    "isReordered": False, "columns": 2,
                                    "cardHeight": CARD_HEIGHT}],
            "isAccordionReordered": True}


def tag(view_id: str, name: str, state: dict, now_ms: int | None = None) -> tuple[str, str]:
    """(experiment tag key, value) of the saved view ``view_id`` named ``name``."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    envelope = {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    return TAG_PREFIX + view_id, json.dumps(envelope)


def save_view(client, experiment_id: str, view_id: str, name: str, state: dict) -> str | None:
    """Write the view on the experiment; the query that opens it in the chart view
    (``workflowType=machine_learning&compareRunsMode=CHART&viewStateShareKey=<view_id>``), or
    None outside the tested MLflow series (nothing written)."""
    if not supported("MLflow's saved views", "mlflow", TESTED):
        return None
    key, value = tag(view_id, name, state)
    client.set_experiment_tag(experiment_id, key, value)
    return f"workflowType=machine_learning&compareRunsMode=CHART&viewStateShareKey={view_id}"
