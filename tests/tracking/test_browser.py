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


# The step images, asserted on element boxes in a browser driven over the DevTools protocol
# (scripts/readme_assets.Browser): a card is the element around a chart's title and its menu
# button; a picture is "seen" when its <img> box lies inside its card's box and the window.

CARD = """(title) => {
  const label = [...document.querySelectorAll('*')].find(e => e.children.length === 0
      && (e.innerText || '').trim() === title);
  let card = label;
  while (card && !(card.querySelector('[data-testid=experiment-view-compare-runs-card-menu]')
                   && card.getBoundingClientRect().height > 200)) card = card.parentElement;
  if (!card) return null;
  const box = card.getBoundingClientRect();
  const imgs = [...card.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0)
      .map(i => {          // the part of the picture inside every box that clips it
        const r = i.getBoundingClientRect();
        let [l, t, rt, b] = [Math.max(r.left, box.left, 0), Math.max(r.top, box.top, 0),
                             Math.min(r.right, box.right, window.innerWidth),
                             Math.min(r.bottom, box.bottom, window.innerHeight)];
        for (let e = i.parentElement; e && e !== card; e = e.parentElement) {
          if (getComputedStyle(e).overflowY === 'visible') continue;
          const c = e.getBoundingClientRect();
          [l, t, rt, b] = [Math.max(l, c.left), Math.max(t, c.top), Math.min(rt, c.right),
                           Math.min(b, c.bottom)];
        }
        return Math.max(0, rt - l) * Math.max(0, b - t) / (r.width * r.height);
      });
  return {imgs, text: card.innerText};
}"""


def _card(browser, title: str) -> dict | None:
    import json
    return browser.js(f"({CARD})({json.dumps(title)})")


def _seen(card: dict) -> float:
    """The largest fraction of one of ``card``'s pictures that is on screen: inside the window,
    the card and every box of the card that clips it (its scrolled panel)."""
    return max(card["imgs"], default=0.0)


@pytest.fixture
def browser(ui):
    from readme_assets import Browser
    b = Browser(ui[5] / f"cdp-{time.monotonic_ns()}", width=1600, height=1000)
    yield b
    b.close()


def _shot(ui, browser, name: str) -> None:
    png = ui[5] / f"{name}.png"
    browser.screenshot(png)
    keep = os.environ.get("FFEXP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


def _wait_card(browser, title: str, pictures: int, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        browser.js("[...document.querySelectorAll('button[aria-label=Close]')]"
                   ".forEach(b => b.click())")                   # MLflow's assistant panel
        card = _card(browser, title)
        if card and len(card["imgs"]) >= pictures:
            time.sleep(2)                                        # let the layout settle
            return _card(browser, title)
        if time.monotonic() > deadline:
            raise AssertionError(f"no card {title!r} with {pictures} picture(s): {card}")
        time.sleep(1)


def test_the_sweeps_view_shows_its_childrens_step_images_in_their_cards(ui, browser):
    """The address a sweep prints at its end (the experiment's saved view, MLflow's Views menu)
    opens the chart view on the children's step images: every child in both cards, the
    pictures inside their cards and on screen without scrolling or clicking."""
    base, client, parent, children, _, _ = ui
    exp = parent.info.experiment_id
    view = client.get_experiment(exp).tags.get(f"mlflow.sharedViewState.{parent.info.run_id}")
    import json
    assert json.loads(view)["name"] == f"{parent.info.run_name}: step images"
    browser.call("Page.navigate", url=f"{base}/#/experiments/{exp}/runs?workflowType="
                 f"machine_learning&compareRunsMode=CHART&viewStateShareKey={parent.info.run_id}")
    cards = {key: _wait_card(browser, key, len(children))
             for key in ("decision_boundary", "gradient_flow")}
    _shot(ui, browser, "sweep_view_step_images")
    for key, card in cards.items():
        assert all(c.info.run_name in card["text"] for c in children), key
        assert "dataset.seed=" not in card["text"]               # no run parameters
        assert _seen(card) > 0.99, f"{key}: no whole picture inside its card on screen: {card}"


def test_a_childs_run_page_shows_its_picture_once_run_parameters_are_off(ui, browser):
    """On a child's run page (Model metrics, section "Model metrics" at the bottom) the image
    card prints the run's ~37 params above the picture, below the card's visible box; the
    switch the README names (card menu, Configure, "Show run parameters" off, Save changes)
    brings the picture inside the card (but for its lowest ~20 px, the x-axis label)."""
    base, _, _, children, _, _ = ui
    run = children[0]
    browser.call("Page.navigate", url=f"{base}/#/experiments/{run.info.experiment_id}/runs/"
                 f"{run.info.run_id}/model-metrics?workflowType=machine_learning")

    def to_images() -> dict:
        deadline = time.monotonic() + 120
        while not browser.js("[...document.querySelectorAll('*')].some(e => "
                             "e.children.length === 0 && e.innerText === 'decision_boundary')"):
            browser.js("""(() => { const s = [...document.querySelectorAll('*')].filter(e =>
                e.children.length === 0 && (e.innerText || '').trim() === 'Model metrics');
                if (s.length) s[s.length - 1].scrollIntoView(); })()""")
            if time.monotonic() > deadline:
                raise AssertionError("the run page never showed its image cards")
            time.sleep(1)
        browser.js("[...document.querySelectorAll('*')].find(e => e.children.length === 0 && "
                   "e.innerText === 'decision_boundary').scrollIntoView({block: 'center'})")
        return _wait_card(browser, "decision_boundary", 1)

    card = to_images()
    _shot(ui, browser, "run_page_image_card_default")
    assert "dataset.seed=" in card["text"] and _seen(card) < 0.2  # MLflow's default

    def click(expression: str) -> None:
        x, y = browser.js(f"(() => {{ const r = ({expression}).getBoundingClientRect(); "
                          f"return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                         clickCount=1)
        time.sleep(1.5)

    menu = ("(() => { const sel = '[data-testid=experiment-view-compare-runs-card-menu]'; "
            "let c = [...document.querySelectorAll('*')].find(e => e.children.length === 0 && "
            "e.innerText === 'decision_boundary'); "
            "while (c && !c.querySelector(sel)) c = c.parentElement; "
            "return c.querySelector(sel); })()")
    click(menu)
    click("[...document.querySelectorAll('[role=menuitem]')].find(x => x.innerText === "
          "'Configure')")
    click("document.querySelector('[role=dialog] [role=switch]')")
    click("[...document.querySelectorAll('[role=dialog] button')].find(x => "
          "x.innerText.trim() === 'Save changes')")
    card = to_images()
    _shot(ui, browser, "run_page_image_card_without_params")
    assert "dataset.seed=" not in card["text"]
    # the picture in its card, but for its last ~20 px (a 240-px thumbnail in a 360-px card)
    assert _seen(card) > 0.85, f"the picture is not inside its card: {card}"
