"""A run's (or a LoggedModel's) artifact store handed to MLflow's client when ffexp creates it,
so that the first upload does not read the whole run back.

MLflow's client uploads an artifact through the artifact repository of the run or model; it
finds it in a per-process cache (``mlflow.tracking._tracking_service.utils._artifact_repos_cache``,
keyed by the run's or model's id) or, the first time, by reading the run back (``get_run``:
its params, tags, metrics and inputs, ~7-15 ms of ORM a job on SQLite) or the model
(``get_logged_model``) only to learn its artifact location, which ``create_run`` and
``create_logged_model`` had just returned. ``prime`` puts the repository MLflow would build
from that location (``get_artifact_repository`` of the location with the client's
``add_databricks_profile_info_to_artifact_uri``, as ``TrackingServiceClient._get_artifact_repo``
does) into that cache; the uploads then go where they went before, to the same repository.

Private parts: the cache and the two helpers. Only under the MLflow series in ``TESTED``
(tests/tracking/test_artifact_prime.py checks that no read is made and that the artifacts land
where MLflow puts them); elsewhere, or with ``FFEXP_PUBLIC_ONLY=1``, nothing is primed and MLflow
reads the run as before.
"""

from __future__ import annotations

from .gate import supported

#: the MLflow (major, minor) series whose client's cache this was tested against
TESTED = ((3, 18),)
#: MLflow's own bound on the cache (it drops the oldest entry beyond it)
CACHE_SIZE = 1024


def prime(client, resource_id: str, artifact_location: str | None) -> bool:
    """Cache the artifact repository at ``artifact_location`` for the run or LoggedModel
    ``resource_id`` in MLflow's client (``client``: an MlflowClient, or a wrapper with
    ``unwrapped``); False (nothing done) where it is not tested or MLflow's internals moved."""
    if not artifact_location or not supported("the artifact store handed to MLflow's client",
                                              "mlflow", TESTED):
        return False
    try:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.tracking._tracking_service import utils
        from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri
        tracking_uri = getattr(client, "unwrapped", client)._tracking_client.tracking_uri
        cache = utils._artifact_repos_cache
        if resource_id in cache:
            return True
        location = add_databricks_profile_info_to_artifact_uri(artifact_location, tracking_uri)
        repo = get_artifact_repository(location, tracking_uri=tracking_uri)
    except (ImportError, AttributeError):
        return False
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    cache[resource_id] = repo
    return True
