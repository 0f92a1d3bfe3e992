"""model.depth and model.width: a shorthand for equal hidden layers, through the real Hydra
composition and the real command."""

from __future__ import annotations

import pytest

from conftest import ffexp


@pytest.mark.parametrize("overrides, sizes", [
    (["model.depth=10", "model.width=32"], (32,) * 10),
    (["model.depth=4"], (16,) * 4),                 # the width of the default [16, 16]
    (["model.width=8"], (8, 8)),                    # the depth of the default [16, 16]
    (["model.depth=0", "model.width=8"], ()),
])
def test_depth_and_width_make_equal_hidden_layers(settings_of, overrides, sizes):
    model = settings_of(*overrides).model
    assert model.hidden_sizes == sizes
    assert (model.depth, model.width) == (len(sizes), sizes[0] if sizes else 8)


def test_without_them_hidden_sizes_stays(settings_of):
    model = settings_of("model.hidden_sizes=[5,3]").model
    assert model.hidden_sizes == (5, 3) and model.depth is None and model.width is None


@pytest.mark.parametrize("args, message", [
    (["model.depth=3", "model.hidden_sizes=[4]"],
     "ffexp: error: model.depth=3: cannot be combined with model.hidden_sizes=[4]; give either "
     "model.depth and model.width (equal hidden layers) or model.hidden_sizes (each layer's "
     "size)"),
    (["model.width=0"], "ffexp: error: model.width=0: must be an integer >= 1"),
    (["model.depth=2", "model.hidden_sizes=[4,5]"], "ffexp: error: model.depth=2: cannot be combined"),
])
def test_bad_combinations_end_in_one_line(tmp_path, args, message):
    proc = ffexp(*args, "tracking.enabled=false", "train.epochs=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.yaml"))


def test_a_preset_of_unequal_widths_needs_the_width(settings_of):
    with pytest.raises(ValueError, match=r"model.depth=3: model.hidden_sizes=\[4,5\] has unequal widths"):
        from ffexp.launch.config import equal_layers
        model = settings_of("model.hidden_sizes=[4,5]").model
        from dataclasses import replace
        equal_layers(replace(model, depth=3))


def test_the_run_trains_the_network_it_names(tmp_path):
    proc = ffexp("model.depth=3", "model.width=8", "train.epochs=1", "tracking.enabled=false",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (log,) = tmp_path.rglob("ffexp.log")
    assert "hidden_sizes=(8, 8, 8)" in log.read_text()
