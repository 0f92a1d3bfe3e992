"""ffexp-report over a 2 activations × 2 inits × 2 seeds sweep, read back through MlflowClient."""

from __future__ import annotations

import csv
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from mlflow import MlflowClient

from ffexp.report.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(real_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r"
    argv = ["--tracking-uri", real_sweep["uri"], "--output", str(out)]
    assert main(argv) == 0
    return {"out": out, "argv": argv, **real_sweep}


def _groups(out):
    with open(out / "groups.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_four_groups_of_two_seeds(report):
    rows = _groups(report["out"])
    assert sorted((r["activation"], r["init"]) for r in rows) == [
        ("relu", "he"), ("relu", "xavier"), ("tanh", "he"), ("tanh", "xavier")]
    assert all(r["n"] == "2" and r["runs"] == "2" for r in rows)
    means = [float(r["mean"]) for r in rows]
    assert means == sorted(means, reverse=True)  # val/accuracy: higher is better
    # competition ranking: equal means share the first rank of their run and are marked
    assert [int(r["rank"]) for r in rows] == [1 + means.index(m) for m in means]
    assert [r["tie"] == "True" for r in rows] == [means.count(m) > 1 for m in means]


def test_means_equal_a_hand_computation_from_mlflow(report):
    client = MlflowClient(tracking_uri=report["uri"])
    by_group: dict[tuple[str, str], list[float]] = {}
    for run_id in report["children"]:
        run = client.get_run(run_id)
        last = client.get_metric_history(run_id, "val/accuracy")
        value = max(last, key=lambda m: m.step).value
        by_group.setdefault((run.data.params["activation"], run.data.params["init"]), []).append(value)
    for row in _groups(report["out"]):
        values = np.array(by_group[(row["activation"], row["init"])])
        mean, std = values.mean(), values.std(ddof=1)
        assert float(row["mean"]) == pytest.approx(mean, rel=1e-9)
        assert float(row["std"]) == pytest.approx(std, rel=1e-9)
        assert row["ci_low"] == row["ci_high"] == ""  # 2 seeds: no interval
        assert (f"| {mean:.4f} | {std:.4f} | — (n < 3) |"
                in (report["out"] / "report.md").read_text())


def test_figures_are_valid_pngs(report):
    md = (report["out"] / "report.md").read_text()
    names = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert set(names) == {"learning_curves.png", "grad_norms.png", "heatmap.png"}
    for name in names:
        path = report["out"] / name
        assert path.read_bytes()[:8] == PNG
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    html = (report["out"] / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "src=\"heatmap.png\"" not in html


def test_tables_paired_comparison_and_provenance(report):
    md = (report["out"] / "report.md").read_text()
    assert "## Paired comparisons within blocks" in md
    # one factor at a time: activation within init = he, xavier; init within activation =
    # relu, tanh — four comparisons on 2 shared seeds each
    pairs = list(csv.DictReader(open(report["out"] / "paired.csv", newline="")))
    fixed = {"activation": "init", "init": "activation"}
    assert sorted((p["compared"], p[fixed[p["compared"]]]) for p in pairs) == [
        ("activation", "he"), ("activation", "xavier"), ("init", "relu"), ("init", "tanh")]
    for p in pairs:  # the reference differs from the group in the compared factor only
        assert p[fixed[p["compared"]]] == p[f"ref_{fixed[p['compared']]}"]
        assert p[p["compared"]] != p[f"ref_{p['compared']}"]
    assert {p["shared_seeds"] for p in pairs} == {"2"}
    assert md.count("not comparable (n < 3)") == 4
    methods = md.split("## Statistical methods\n\n")[1].split("\n\n")[0]
    assert "Student's t over seeds" in methods and "cut to the range of `val/accuracy`, [0, 1]" \
        in methods and "Holm's step-down correction" in methods and "sign test" in methods
    warnings = [p for p in md.split("\n\n") if p.startswith("> **Warning:**")]
    assert warnings == ["> **Warning:** every group has at most 2 seeds (n < 3): no interval, "
                        "and the groups **cannot be compared** — a difference between them may "
                        "be seed noise. Rerun the sweep with 3 or more seeds (e.g. `seed=0,1,2`)."]
    assert "Sweep command line: `ffexp -m activation=relu,tanh init=he,xavier seed=0,1" in md
    assert "Selection: the most recent sweep in the store" in md
    assert "[provenance.md](provenance.md) holds what changes when the sweep is rerun" in md
    prov = (report["out"] / "provenance.md").read_text()
    client = MlflowClient(tracking_uri=report["uri"])
    volatile = [report["parent"], *report["children"],
                client.get_run(report["parent"]).data.tags["ffexp.sweep_id"],
                client.get_run(report["parent"]).info.run_name]
    assert all(v in prov for v in volatile) and not any(v in md for v in volatile)
    assert f"Tracking store: `{report['uri']}`" in prov  # in report.md only as the sweep's
    assert "Tracking store" not in md                    # own command line names it
    assert re.search(r"Git commit\(s\): `[0-9a-f]{7,40}` \(8 runs\)", prov)
    # the numeric environment, as the runs recorded it (ffexp.env.* tags)
    import numpy
    from ffexp.tracking.numeric_env import environment
    env = environment("float64")
    assert f"- numpy version: `{numpy.__version__}` (8 runs)" in prov
    assert f"- BLAS kernel (threadpoolctl architecture): `{env['blas_kernel']}` (8 runs)" in prov
    assert f"- BLAS library: `{env['blas']}` (8 runs)" in prov and "- dtype: `float64` (8 runs)" in prov
    assert f"- CPU model: `{env['cpu']}` (8 runs)" in prov
    assert "BLAS kernel" not in md
    assert "Git commit" not in md and not re.search(r"\d{4}-\d\d-\d\d", md)
    regen = prov.split("```\n")[1].split("\n")[0]
    assert regen.startswith(f"ffexp-report --tracking-uri {report['uri']} --sweep {report['parent']}")
    html = (report["out"] / "report.html").read_text()
    assert "<h2>Provenance</h2>" in html and report["parent"] in html


def test_run_table_sorted_by_factors_and_seed(report):
    rows = list(csv.DictReader(open(report["out"] / "runs.csv", newline="")))
    keys = [(r["activation"], r["init"], int(r["seed"])) for r in rows]
    assert keys == sorted(keys) and "run_id" not in rows[0]
    md = (report["out"] / "report.md").read_text()
    table = md.split("## Runs\n\n")[1].split("\n\n")[0].splitlines()[2:]
    assert [tuple(c.strip() for c in line.split("|")[2:5]) for line in table] == [
        (a, i, str(s)) for a, i, s in keys]


def test_two_reports_are_byte_identical(report, tmp_path):
    names = ["report.md", "provenance.md", "report.html", "groups.csv", "runs.csv", "paired.csv",
             "learning_curves.png", "grad_norms.png", "heatmap.png"]
    first = {n: (report["out"] / n).read_bytes() for n in names}
    assert main(report["argv"]) == 0
    assert {n: (report["out"] / n).read_bytes() for n in names} == first


def test_report_logged_to_the_sweep_parent(report):
    client = MlflowClient(tracking_uri=report["uri"])
    logged = {f.path for f in client.list_artifacts(report["parent"], "report")}
    assert {"report/report.md", "report/report.html", "report/heatmap.png"} <= logged


def test_selection_by_sweep_id_and_by_filter(real_sweep, tmp_path):
    client = MlflowClient(tracking_uri=real_sweep["uri"])
    sweep_id = client.get_run(real_sweep["parent"]).data.tags["ffexp.sweep_id"]
    relu = "params.activation = 'relu'"
    for name, args, groups in (("id", ["--sweep", sweep_id], 4),
                               ("filter", ["--sweep", sweep_id, "--filter", relu], 2)):
        out = tmp_path / name
        assert main(["--tracking-uri", real_sweep["uri"], *args, "--output", str(out),
                     "--no-log-artifact"]) == 0
        rows = _groups(out)
        assert len(rows) == groups and {r["n"] for r in rows} == {"2"}
    assert sorted(r["init"] for r in rows) == ["he", "xavier"] and "activation" not in rows[0]
    assert "heatmap.png" not in (out / "report.md").read_text()  # one factor left


def test_defaults_store_in_cwd_and_reports_folder(real_sweep, monkeypatch, capsys):
    monkeypatch.chdir(real_sweep["root"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["--no-log-artifact"]) == 0
    folders = list((real_sweep["root"] / "reports").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("sweep")
    assert (folders[0] / "report.md").is_file() and (folders[0] / "report.html").is_file()
    assert "8 runs in 4 groups" in capsys.readouterr().out


RESULTS = ["report.md", "groups.csv", "runs.csv", "paired.csv", "learning_curves.png",
           "grad_norms.png", "heatmap.png"]


@pytest.mark.slow
def test_rerunning_the_sweep_regenerates_the_report_byte_for_byte(tmp_path):
    """The same sweep command twice into one store (the default one, so that both command lines
    are the same): new run ids, sweep id and time, yet the same report.md, tables and figures;
    provenance.md tells the two apart."""
    import os
    import subprocess

    from .conftest import FFEXP, SWEEP

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    for _ in range(2):
        done = subprocess.run([FFEXP, "-m", *SWEEP], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    parents = [r.info.run_id for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])
        if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    for parent, out in zip(parents, (tmp_path / "a", tmp_path / "b")):
        assert main(["--tracking-uri", uri, "--sweep", parent, "--output", str(out),
                     "--no-log-artifact"]) == 0
    for name in RESULTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert ((tmp_path / "a" / "provenance.md").read_text()
            != (tmp_path / "b" / "provenance.md").read_text())
