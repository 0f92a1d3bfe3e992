"""Training replayed in the MLflow UI: at ``tracking.snapshots`` epochs (0 = none) the run logs
the decision boundary and the gradient-flow profile as step images (MLflow's
``log_image(key=..., step=epoch)``), which the run page and the compare view show with a step
slider.

During training the callback only copies the parameters and keeps the epoch's record at the
chosen epochs (microseconds); the images are drawn once training is over, cheaply: each kind's
axes drawn once, the boundary's plot computed in numpy at every pixel, the gradient-flow lines
blitted, with axes limits common to all frames (so the frames of a run compare at a glance),
encoded with fast settings and uploaded in one ``log_artifacts`` call with MLflow's file names
(ffexp/tracking/images.py). Every frame has its epoch written on it (epoch 0: at
initialization) and text large enough to read in MLflow's thumbnail (≤ 256 px).

Keys (step = epoch): ``decision_boundary`` (2-feature classification only, as
plots/decision_boundary.png) and ``gradient_flow`` (‖∂J/∂W[l]‖, ‖∂J/∂Z[l]‖ against l at the
first epoch and at the step's). Artifacts: ``images/<key>+step+<epoch>+timestamp+<ms>+<uuid>.png``
and its ``+compressed.webp`` thumbnail (MLflow's layout); run tag ``mlflow.loggedImages``.
"""

from __future__ import annotations

import copy

import numpy as np

from ffexp.nn import Callback

KEYS = ("decision_boundary", "gradient_flow")


def snapshot_epochs(count: int, epochs: int) -> set[int]:
    """``count`` epochs spread evenly over 0..epochs (step 0: before any update), both ends
    included (fewer when there are fewer epochs); the last only for count 1; none for 0."""
    if count <= 0 or epochs <= 0:
        return set()
    if count == 1:
        return {epochs}
    return {int(e) for e in np.unique(np.round(np.linspace(0, epochs, min(count, epochs + 1))))}


class Snapshots(Callback):
    """Keeps (epoch record, weights, biases) at the chosen epochs, the first and the last."""

    def __init__(self, count: int, epochs: int):
        self.epochs = snapshot_epochs(count, epochs)
        self.taken: list[tuple] = []

    def _take(self, net, stats) -> None:
        self.taken.append((stats, [W.copy() for W in net.weights],
                           [b.copy() for b in net.biases]))

    def on_epoch_end(self, net, stats):
        # the first record too (the reference line of every gradient-flow frame)
        if self.epochs and (stats.epoch in self.epochs or not self.taken):
            self._take(net, stats)

    def on_train_end(self, net, result) -> None:
        last = result.final
        if self.epochs and last is not None and (not self.taken or self.taken[-1][0] is not last):
            self._take(net, last)  # stopped early (converged, diverged): its last epoch

    def frames(self, net, dataset, title: str, gradients: str = "") -> dict[str, list[tuple]]:
        """{key: [(epoch, rgb image), ...]}: the boundary frames (plots.boundary_frames: the
        axes drawn once, each frame's plot computed in numpy) and the gradient-flow frames
        (plots.gradient_flow_frames: blitted over one drawn figure)."""
        if not self.taken or net is None:
            return {}
        from ffexp.plots import figures as plots
        steps = [stats.epoch for stats, _, _ in self.taken]
        frames = {}
        if plots.has_boundary(dataset):
            params = [(weights, biases) for _, weights, biases in self.taken]
            frames[KEYS[0]] = list(zip(steps, plots.boundary_frames(net, dataset, params, steps,
                                                                    title)))
        flow = plots.gradient_flow_frames([stats for stats, _, _ in self.taken], title)
        frames[KEYS[1]] = list(zip(steps, flow))
        return frames

    def log(self, client, run_id: str, net, dataset, title: str, gradients: str) -> int:
        """Draw the frames (``frames``) and log them as step images in one upload
        (tracking.images); returns the number of images logged."""
        from .images import log_step_images
        frames = self.frames(net, dataset, title, gradients)
        return log_step_images(client, run_id, frames) if frames else 0
