"""The report's small pieces: the t interval, number formatting, tables, swept keys, grouping."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ffexp.report.aggregate import lower_is_better, t_interval
from ffexp.report.build import parse_at
from ffexp.report.design import detect_group_keys, swept_keys
from ffexp.report.render import fmt, md_table
from ffexp.report.select import ReportError


def test_t_interval_by_hand():
    # x = 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.3026527297 (tables: 4.303), half = t·s/√3
    mean, std, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0)
    assert hi - 2.0 == pytest.approx(4.3026527297 / math.sqrt(3), rel=1e-10)
    assert lo == pytest.approx(4.0 - hi)
    one = t_interval([0.5])
    assert one[0] == 0.5 and all(math.isnan(v) for v in one[1:])
    assert t_interval([0.925, 0.925, 0.9250000000000002])[1] == 0.0  # rounding noise


def test_fmt_and_md_table():
    assert [fmt(0.91234), fmt(1.2e-5), fmt(float("nan")), fmt(3), fmt(0.0)] == [
        "0.9123", "1.200e-05", "—", "3", "0.0000"]
    assert md_table(["a", "bb"], [["x|y", "1"]]).splitlines() == [
        "| a    | bb  |", "| ---- | --- |", "| x\\|y | 1   |"]


def test_swept_keys_from_a_command_line():
    cmd = "ffexp -m activation=relu,tanh init=he seed=0,1,2 optimizer.lr=range(1,3) hydra/launcher=joblib"
    assert swept_keys(cmd) == {"activation", "seed", "optimizer.lr"}


def test_group_keys_skip_seed_and_determined_params():
    params = pd.DataFrame({"activation": ["relu", "relu", "tanh", "tanh"],
                           "activation.name": ["relu", "relu", "tanh", "tanh"],
                           "seed": ["0", "1", "0", "1"], "train.seed": ["0", "1", "0", "1"],
                           "epochs": ["5", "5", "5", "5"]})
    assert detect_group_keys(params) == ["activation"]


def test_parse_at_and_metric_direction():
    assert [parse_at("final"), parse_at("Best"), parse_at("epoch 7"), parse_at("7")] == [
        "final", "best", "epoch 7", "epoch 7"]
    with pytest.raises(ReportError):
        parse_at("epoch 0")
    assert lower_is_better("val/cost") and lower_is_better("test/hamming_loss")
    assert not lower_is_better("val/accuracy")
