"""Regenerate the README's figures from real runs, so they show what ffexp does today.

    .venv/bin/python scripts/readme_assets.py            # writes docs/img/*.png

In a temporary directory it runs the default job (``ffexp``) and a small sweep
(``ffexp -m activation=relu,tanh seed=0,1,2``), both into one SQLite store there, then writes

- ``docs/img/decision_boundary.png``: the default run's ``plots/decision_boundary.png`` artifact,
  as the run logged it (ffexp/plots.py);
- ``docs/img/gradient_flow.png``: the same run's ``plots/gradient_flow.png``;
- ``docs/img/mlflow_runs.png``: the sweep in the MLflow UI's runs table, the parent run expanded
  to its children (``mlflow ui`` on 127.0.0.1, a free port in 5900-5999, rendered by headless
  Debian ``chromium``; ``apt-get install -y chromium`` when it is missing).

The browser is driven over the DevTools protocol (a pipe, standard library only) to expand the
sweep's row and close MLflow's assistant panel before the screenshot. PNGs are re-encoded with a 256-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PORTS = range(5900, 6000)
SWEEP = ["activation=relu,tanh", "seed=0,1,2", "train.epochs=60"]
CHILD = "relu·s0"                  # a child's run name: the varied values


def ffexp(cwd: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    subprocess.run([str(BIN / "ffexp"), *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=900)


def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing."""
    found = shutil.which("chromium")
    if not found:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True,
                       timeout=1200, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("chromium")
    return found


def free_port(ports: range = PORTS) -> int:
    """The first port of ``ports`` free on 127.0.0.1 (also used by the browser and tour tests)."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def small_png(source: Path, target: Path) -> None:
    """``source`` re-encoded as a 256-colour PNG at ``target`` (a plot or a screenshot has few
    colours, so this loses nothing visible and keeps the file a fraction of its size)."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    Image.open(source).convert("RGB").quantize(256).save(target, optimize=True)


def run_plots(work: Path, out: Path) -> None:
    """The default job, tracked; its logged plots copied out of the artifact store."""
    from mlflow import MlflowClient

    ffexp(work)
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "moons"]
    (run,) = client.search_runs([exp.experiment_id])
    plots = Path(client.download_artifacts(run.info.run_id, "plots", str(work / "dl")))
    for name in ("decision_boundary", "gradient_flow"):
        small_png(plots / f"{name}.png", out / f"{name}.png")


class Browser:
    """Headless chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    JSON messages ending in NUL, commands on fd 3, replies on fd 4): open a page, wait for a
    text, click, take a screenshot; nothing but the standard library."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 900):
        to_browser, from_browser = os.pipe(), os.pipe()

        def fds() -> None:
            read, write = os.dup(to_browser[0]), os.dup(from_browser[1])
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser[0])
        os.close(from_browser[1])
        self.send, self.recv, self.n, self.pending = to_browser[1], from_browser[0], 0, b""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self.n += 1
        message = {"id": self.n, "method": method, "params": params}
        if getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self.send, json.dumps(message).encode() + b"\0")
        while True:                                   # events arrive between the replies
            while b"\0" not in self.pending:
                chunk = os.read(self.recv, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its DevTools pipe")
                self.pending += chunk
            raw, self.pending = self.pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.n:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the page never showed {expression}")
            time.sleep(0.5)

    def screenshot(self, png: Path) -> None:
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


#: the runs table's expand button on the sweep parent's row, and the assistant panel's close
EXPAND = ("[...document.querySelectorAll('a')].find(a => a.innerText.startsWith('sweep'))"
          ".closest('[role=gridcell]').querySelector('button')")
CLOSE_ASSISTANT = "[...document.querySelectorAll('button[aria-label=Close]')].forEach(b => b.click())"


def mlflow_ui(work: Path):
    """``mlflow ui`` over work's store on 127.0.0.1: (process, base address) once it answers."""
    uri = f"sqlite:///{work / 'mlflow.db'}"
    port = free_port()
    server = subprocess.Popen([str(BIN / "mlflow"), "ui", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=5)
            return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("mlflow ui did not start")
            time.sleep(1)


def sweep_screenshot(work: Path, png: Path) -> None:
    """The moons experiment's runs table (the address ffexp prints), the sweep expanded."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "moons"]
    server, base = mlflow_ui(work)
    browser = None
    try:
        browser = Browser(work / "chromium")
        browser.call("Page.navigate", url=f"{base}/#/experiments/{exp.experiment_id}"
                                          "?workflowType=machine_learning")
        browser.wait_for("document.body.innerText.includes('matching runs')")
        expanded = f"document.body.innerText.includes({CHILD!r})"
        for _ in range(10):        # a click can come before the table listens: click again
            browser.js(CLOSE_ASSISTANT)
            browser.js(f"{EXPAND}.click()")
            try:
                browser.wait_for(expanded, seconds=10)
                break
            except RuntimeError:
                continue
        else:
            raise RuntimeError("the sweep's row did not expand")
        time.sleep(2)                                 # let the table settle
        browser.screenshot(png)
    finally:
        if browser:
            browser.close()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--keep", type=Path, help="also keep the work directory here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ffexp-readme-") as tmp:
        work = Path(tmp)
        run_plots(work, args.out)
        ffexp(work, "-m", *SWEEP)
        raw = work / "runs.png"
        sweep_screenshot(work, raw)
        small_png(raw, args.out / "mlflow_runs.png")
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    for png in sorted(args.out.glob("*.png")):
        print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}  "
              f"{png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
