"""A run's figures (matplotlib at the edge): learning curves, gradient norms and flow, the
decision boundary, and the PNG encoder they and the step images share (ffexp.plots.png).

``ffexp.plots.<function>`` is the documented import path of the figure functions
(docs/python-api.md); they live in ffexp.plots.figures, imported on first use so that the PNG
encoder alone does not load matplotlib."""

from __future__ import annotations

__all__ = ["boundary_field", "boundary_pixels", "decision_boundary", "draw", "figure",
           "gradient_flow", "gradient_flow_frames", "gradient_norms", "has_boundary",
           "learning_curves", "save", "write_plots"]


def __getattr__(name: str):
    if name in __all__:
        from ffexp.plots import figures
        return getattr(figures, name)
    raise AttributeError(f"module 'ffexp.plots' has no attribute {name!r}")
