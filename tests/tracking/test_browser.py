"""The MLflow UI in a real browser (slow): ``mlflow ui`` on 127.0.0.1 over a store made by a
small real sweep, its pages rendered by headless Chromium (Debian's ``chromium``, installed
here when missing), asserted on the rendered DOM; screenshots are kept in the test's directory
(``FFEXP_SCREENSHOTS=<dir>`` copies them there, to look at).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers_tracking import FAST, all_runs, run_ffexp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from readme_assets import chromium, free_port  # noqa: E402  (one copy of each)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SWEEP = ["activation=relu,tanh", "seed=0,1", "train.epochs=6", "tracking.snapshots=3", *FAST]
PORTS = range(5200, 5300)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(base url, client, parent run, children, browser, directory) with the server up."""
    browser = chromium()
    root = tmp_path_factory.mktemp("ui")
    run_ffexp(root, "-m", *SWEEP)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = all_runs(uri)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r is not parent]
    port = free_port(PORTS)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    server = subprocess.Popen([mlflow, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("mlflow ui did not start")
                time.sleep(1)
        yield base, MlflowClient(uri), parent, children, browser, root
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


#: virtual-time budgets (ms) a page gets, in turn, until it shows what the test waits for: the
#: UI fills its tables by requests to the server, whose answers come later on a loaded machine
#: (at a load average of 10-17 the runs table was still empty after 20 s)
BUDGETS = (20000, 60000, 180000)


def _page(ui, path: str, shot: str | None = None, budget: int = 20000,
          until: tuple[str, ...] = ()) -> str:
    """The rendered DOM of ``base/#<path>`` once its text shows every string of ``until`` (or
    the largest budget is spent); with ``shot`` also a screenshot <dir>/<shot>.png of it."""
    for wait in sorted({budget, *(b for b in BUDGETS if b > budget)}):
        dom = _render(ui, path, shot, wait)
        if all(s in _text(dom) for s in until):
            break
    return dom


def _render(ui, path: str, shot: str | None, budget: int) -> str:
    base, _, _, _, browser, root = ui
    profile = root / "chromium-profile"
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--window-size=1600,1000", f"--virtual-time-budget={budget}"]
    url = f"{base}/#{path}"
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True,
                         timeout=300).stdout
    if shot:
        png = root / f"{shot}.png"
        subprocess.run([*args, f"--screenshot={png}", url], capture_output=True, timeout=300)
        keep = os.environ.get("FFEXP_SCREENSHOTS")
        if keep and png.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, Path(keep) / png.name)
    return dom


def _text(dom: str) -> str:
    """The page's visible text, roughly: tags and scripts removed, whitespace collapsed."""
    import html
    import re
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))


ML = "?workflowType=machine_learning"   # the address ffexp prints: the runs view


def test_runs_view_with_the_sweep_and_its_children_nested(ui):
    """The address ffexp prints opens the runs table (not MLflow 3.17's GenAI overview): one
    top-level row, the sweep parent, with its children nested (collapsed) under it."""
    _, _, parent, children, _, root = ui
    exp = parent.info.experiment_id
    text = _text(_page(ui, f"/experiments/{exp}{ML}", "runs_table",
                       until=(parent.info.run_name, "matching runs")))
    (root / "runs_table.txt").write_text(text)
    assert "Run Name" in text and "Dataset" in text and "Token Usage" not in text
    assert parent.info.run_name in text and f"{len(children) + 1} matching runs" in text
    names = {c.info.run_name for c in children}
    assert names == {"relu·s0", "relu·s1", "tanh·s0", "tanh·s1"}   # the varied factors only
    assert not any(name in text for name in names)                  # nested: collapsed


def test_run_page_dataset_description_and_step_images(ui):
    _, _, _, children, _, root = ui
    run = children[0]
    page = f"/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    text = _text(_page(ui, page + ML, "run_overview",
                       until=(run.info.run_name, "finished after")))
    (root / "run_overview.txt").write_text(text)
    digest = run.inputs.dataset_inputs[0].dataset.digest
    assert run.info.run_name in text and "moons" in text and digest in text
    assert "finished after 6 epochs" in text                         # the description
    text = _text(_page(ui, page + "/artifacts/images" + ML, "run_images", budget=30000,
                       until=("decision_boundary+step+",)))
    (root / "run_images.txt").write_text(text)
    assert "decision_boundary+step+" in text and "gradient_flow+step+" in text


def test_compare_view_shows_the_children_by_what_varies(ui):
    _, _, parent, children, _, root = ui
    ids = ",".join(f"%22{c.info.run_id}%22" for c in children)
    text = _text(_page(ui, f"/compare-runs?runs=[{ids}]&experiments=[%22"
                           f"{parent.info.experiment_id}%22]", "compare",
                       until=tuple(c.info.run_name for c in children)))
    (root / "compare.txt").write_text(text)
    assert all(c.info.run_name in text for c in children)
    # one param per value: the parallel coordinates start on what the sweep varied
    assert "Parameters: activation seed" in text
