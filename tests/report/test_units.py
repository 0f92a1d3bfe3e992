"""The report's small pieces: number formatting, escaping, tables, swept keys, grouping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ffexp.report.aggregate import lower_is_better
from ffexp.report.build import output_dir, parse_at
from ffexp.report.design import detect_group_keys, swept_keys
from ffexp.report.render import _inline, code, esc, fmt, md_table
from ffexp.report.select import ReportError


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


def test_run_order_is_natural_by_factors_then_seed_then_id():
    from ffexp.report.design import run_order

    params = pd.DataFrame({"batch_size": ["32", "8", "8", "128"], "seed": ["10", "2", "2", "0"]})
    assert run_order(params, ["batch_size"], ["a", "d", "c", "b"]) == [2, 1, 0, 3]


def _runs(tasks_metrics):
    """A search_runs-like frame: one run per (task, {metric: value})."""
    return pd.DataFrame([{"params.task": t, **{f"metrics.{m}": v for m, v in ms.items()}}
                         for t, ms in tasks_metrics])


def test_mixed_tasks_error_suggests_a_common_metric():
    from ffexp.report.aggregate import resolve_metric

    runs = _runs([("binary", {"val/accuracy": 0.9, "val/f1": 0.8, "val/roc_auc": 0.9}),
                  ("multiclass", {"val/accuracy": 0.7, "val/f1_micro": 0.7})])
    with pytest.raises(ReportError, match=r"mix the tasks binary, multiclass; pass one common to "
                                          r"them, e.g. --metric val/accuracy$"):
        resolve_metric(None, runs)
    runs = _runs([("binary", {"val/accuracy": 0.9, "val/cost": 0.3}),
                  ("regression", {"val/r2": 0.5, "val/cost": 0.1})])
    with pytest.raises(ReportError, match="e.g. --metric val/cost$"):
        resolve_metric(None, runs)
    runs = _runs([("binary", {"val/accuracy": 0.9}), ("regression", {"val/r2": 0.5})])
    with pytest.raises(ReportError, match=r"no validation metric is common to them\)$"):
        resolve_metric(None, runs)
    assert resolve_metric("accuracy", runs) == "val/accuracy"


def test_variance_explained_by_hand():
    from ffexp.report.aggregate import variance_explained

    # values 1, 3 | 5, 7: mean 4, total SS 9+1+1+9 = 20; between 2·(2−4)² + 2·(6−4)² = 16
    per_run = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["u", "v", "u", "v"],
                            "value": [1.0, 3.0, 5.0, 7.0]})
    assert variance_explained(per_run, "a") == pytest.approx(16 / 20)
    assert variance_explained(per_run, "b") == pytest.approx(4 / 20)
    assert variance_explained(per_run.assign(value=2.0), "a") == 0.0


def test_heatmap_factors_explain_most_variance_and_skip_nested():
    from ffexp.report.aggregate import heatmap_factors, nested_in

    # init.scale varies only with init = random (as a swept dict {name:random,scale:1.0} does)
    rows = [("relu", "he", "0.01", 0.95), ("relu", "random", "0.01", 0.5),
            ("relu", "random", "1.0", 0.2), ("relu", "zeros", "0.01", 0.5),
            ("tanh", "he", "0.01", 0.93), ("tanh", "random", "0.01", 0.5),
            ("tanh", "random", "1.0", 0.9), ("tanh", "zeros", "0.01", 0.5)]
    params = pd.DataFrame([r[:3] for r in rows], columns=["activation", "init", "init.scale"])
    per_run = params.assign(value=[r[3] for r in rows])
    assert nested_in(params, "init.scale", "init") and not nested_in(params, "init", "init.scale")
    assert not nested_in(params, "activation", "init")  # crossed
    chosen, nested = heatmap_factors(per_run, params, ["activation", "init", "init.scale"])
    assert [k for k, _ in chosen] == ["init", "activation"] and nested == [("init.scale", "init")]
    # batch_size is nested in optimizer: through its group (ffexp logs it once), and through
    # the alias optimizer.batch_size of older stores
    params = pd.DataFrame({"optimizer": ["batch", "minibatch", "minibatch", "sgd"],
                           "batch_size": ["32", "8", "32", "32"]})
    assert nested_in(params, "batch_size", "optimizer")
    assert not nested_in(params, "optimizer", "batch_size")
    params["optimizer.batch_size"] = params["batch_size"]
    assert nested_in(params, "batch_size", "optimizer")
    # crossed levels are not nested, group or not
    crossed = pd.DataFrame({"optimizer": ["batch", "batch", "sgd", "sgd"],
                            "batch_size": ["8", "32", "8", "32"]})
    assert not nested_in(crossed, "batch_size", "optimizer")


def test_equal_means_rank_by_keys_not_by_rounding_noise():
    from ffexp.report.aggregate import summarize

    per_run = pd.DataFrame({"a": ["x", "x", "x", "y", "y", "y"], "seed": ["0", "1", "2"] * 2,
                            "outcome": ["finished"] * 6,
                            "value": [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]})  # means 0.2 ± 1 ulp
    groups = summarize(per_run, ["a"], "val/accuracy", "final").groups
    assert list(groups["a"]) == ["x", "y"]
    groups = summarize(per_run.iloc[::-1], ["a"], "val/accuracy", "final").groups
    assert list(groups["a"]) == ["x", "y"]


def test_store_text_is_escaped_in_markdown_and_html():
    evil = "<img src=x onerror=alert(1)> *bold* [link](http://x) a_b _c_"
    md = esc(evil)
    assert "<" not in md.replace("\\<", "") and "*" not in md.replace("\\*", "")
    assert "](" not in md.replace("\\](", "") and "[link\\](" in md and "a_b" in md and "\\_c\\_" in md
    assert esc("[32,32]") == "[32,32]"  # brackets that cannot make a link stay as they are
    assert _inline(md) == ("&lt;img src=x onerror=alert(1)&gt; *bold* [link](http://x) "
                           "a_b _c_")  # the HTML shows the text, and only the text
    assert code("a `b` c") == "``a `b` c``" and _inline(code("a `b` c")) == "<code>a `b` c</code>"
    assert _inline(code("<b>")) == "<code>&lt;b&gt;</code>"
    assert _inline("**x** and `k`") == "<strong>x</strong> and <code>k</code>"


@pytest.mark.parametrize("name", ["..", ".", "../../etc", "/abs/path", "a/../..", "~", ""])
def test_the_default_output_folder_stays_inside_reports(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = output_dir(None, name)
    assert out.resolve().parent == (tmp_path / "reports").resolve()
    assert output_dir("elsewhere/x", name) == Path("elsewhere/x")  # --output is the user's
