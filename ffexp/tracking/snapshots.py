"""Training replayed in the MLflow UI: at ``tracking.snapshots`` epochs (0 = none) the run logs
the decision boundary and the gradient-flow profile as step images (MLflow's
``log_image(key=..., step=epoch)``), which the run page and the compare view show with a step
slider.

During training the callback only copies the parameters and keeps the epoch's record at the
chosen epochs (microseconds); the images are drawn once training is over, on one reused figure
with fixed axes limits, so the frames of a run compare at a glance.

Keys (step = epoch): ``decision_boundary`` (2-feature classification only, as
plots/decision_boundary.png) and ``gradient_flow`` (‖∂J/∂W[l]‖, ‖∂J/∂Z[l]‖ against l at the
first epoch and at the step's). Artifacts: ``images/<key>+step+<epoch>+…png`` and a compressed
``.webp`` beside it (MLflow's layout).
"""

from __future__ import annotations

import copy

import numpy as np

from ffexp.nn import Callback

KEYS = ("decision_boundary", "gradient_flow")
#: a frame: small enough for the UI's image grid, cheap to draw
FLOW_SIZE, DPI, GRID = (3.6, 3.2), 72, 60


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

    def log(self, client, run_id: str, net, dataset, title: str, gradients: str) -> int:
        """Draw and log the frames; returns the number of images logged. The boundary frames
        are numpy images (plots.boundary_pixels); the gradient-flow frames share one figure
        whose second line and title change from frame to frame."""
        if not self.taken or net is None:
            return 0
        from ffexp import plots
        first, last = self.taken[0][0], self.taken[-1][0]
        fig = plots.gradient_flow(first, last, title, gradients, FLOW_SIZE, DPI)
        for ax, ylim in zip(fig.axes, _flow_limits([s for s, _, _ in self.taken])):
            if ylim is not None:
                ax.set_ylim(*ylim)
        frame = copy.copy(net)
        n = 0
        for stats, weights, biases in self.taken:
            if plots.has_boundary(dataset):
                frame.weights, frame.biases = weights, biases
                client.log_image(run_id, plots.boundary_pixels(frame, dataset, GRID),
                                 key=KEYS[0], step=stats.epoch)
                n += 1
            _show_epoch(fig, stats, first, gradients, f"{title} · epoch {stats.epoch}")
            client.log_image(run_id, _pixels(fig), key=KEYS[1], step=stats.epoch)
            n += 1
        return n


def _show_epoch(fig, stats, first, gradients: str, title: str) -> None:
    """The gradient-flow figure at ``stats``: its second line (the first epoch's stays)."""
    from ffexp.plots import _profile_label
    for ax, attr in zip(fig.axes, ("grad_norm_W", "grad_norm_Z")):
        lines = ax.get_lines()
        if len(lines) < 2:
            continue
        y = np.asarray(getattr(stats, attr), dtype=float)
        lines[1].set_data(np.arange(1, len(y) + 1), np.where(y > 0, y, np.nan))
        lines[1].set_visible(stats is not first)
        legend = ax.get_legend()
        if legend is not None and len(legend.get_texts()) > 1:
            legend.get_texts()[1].set_text(_profile_label(stats, gradients)
                                           if stats is not first else "")
            legend.legend_handles[1].set_visible(stats is not first)
    fig._suptitle.set_text(f"{title} — gradient flow across layers")


def _flow_limits(records) -> list:
    """Common y limits of the frames' W and Z panels (log axes: a margin by factors)."""
    out = []
    for attr in ("grad_norm_W", "grad_norm_Z"):
        v = np.concatenate([np.asarray(getattr(s, attr), dtype=float) for s in records])
        v = v[np.isfinite(v) & (v > 0)]
        out.append((v.min() / 1.5, v.max() * 1.5) if v.size else None)
    return out


def _pixels(fig) -> np.ndarray:
    """The drawn figure as an (h, w, 3) uint8 array, for ``log_image``."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
