"""The run's pictures with the text cache off and on (ffexp/text_tiles.py, issue 15).

The default run (``ffexp train.epochs=50``: moons, 2-16-16-1) is trained once; then, in the
same warm process, interleaved and repeated, medians:

* ``write_plots`` (the run's four PNGs: build, draw, encode, write) as it was (text drawn by
  Agg, ``savefig`` at zlib level 1), with the text cache off (the fast encoder alone), and
  with the cache on: warm (the same run again: every string from the cache), a new title on
  each call (the four titles miss, the rest hit), cold (the cache emptied before each call:
  every string rendered into a tile first) and another run on each call (``seed=1, 2, ...``,
  one per repeat, trained first), as a sweep's jobs in one process: their titles, their y
  tick labels and the tick labels' places differ;
* each figure's ``canvas.draw()`` with the cache off and on (warm);
* ``gradient_flow_frames`` over 10 records (the step images), cache off and on (warm).

Ratios are against the first row of each table, measured in the same run. The load averages
at the start and the end are printed: on the 2 shared cores another process moves every time.

    python benchmarks/plots.py [--repeats 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from ffexp.plots import figures as plots
from ffexp._compat import mpl_text as text_tiles
from ffexp.job.app import execute, prepare
from ffexp.launch.config import register_schemas, to_settings

TITLE = "moons · relu·he·s0"


def load() -> str:
    """The 1, 5 and 15 minute load averages: another process on the cores skews the ratios."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def default_run(seed: int = 0):
    """The default config's job trained for 50 epochs: (TrainResult, network, dataset)."""
    register_schemas()
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=["train.epochs=50", f"seed={seed}"])
    r = execute(prepare(to_settings(cfg)), [])
    return r.train, r.net, r.dataset


def savefig(fig, path) -> Path:
    """plots.save before the fast encoder: matplotlib's savefig through Pillow, zlib level 1."""
    fig.savefig(path, dpi=fig.dpi, pil_kwargs={"compress_level": 1})
    return Path(path)


def timed(call) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def interleaved(cases: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each case's (setup, call), the cases alternating within a repeat."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (setup, call) in cases.items():
            setup()
            times[name].append(timed(call))
    return {name: statistics.median(ts) for name, ts in times.items()}


def cache(on: bool, clear: bool = False):
    def setup():
        text_tiles.TEXT_CACHE.enabled = on
        if clear:
            text_tiles.TEXT_CACHE.clear()
    return setup


def table(rows: dict[str, float], unit: str = "ms") -> None:
    base = next(iter(rows.values()))
    for name, seconds in rows.items():
        print(f"  {name:44s} {seconds * 1000:7.1f} {unit}  {seconds / base:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    print(f"load average {load()}")
    result, net, dataset = default_run()
    others = iter([default_run(seed) for seed in range(1, args.repeats + 1)])
    out = Path(tempfile.mkdtemp(prefix="ffexp-plots-bench-"))
    real_save, titles = plots.save, iter(range(10 ** 9))

    def write(title=TITLE):
        return plots.write_plots(result, out, net, dataset, title)

    def before():
        plots.save = savefig
        try:
            write()
        finally:
            plots.save = real_save

    def another():
        r, n, d = next(others)
        plots.write_plots(r, out, n, d, f"{TITLE} · run {next(titles)}")

    write()                                        # figures made, fonts loaded, cache warm
    print(f"write_plots (4 PNGs), median of {args.repeats}; ratio to the first row")
    cases = {
        "before: savefig, text drawn by Agg": (cache(False), before),
        "fast encoder, text cache off": (cache(False), write),
        "fast encoder, text cache on (warm)": (cache(True), write),
        "fast encoder, cache on, a new title each call": (
            cache(True), lambda: write(f"{TITLE} · run {next(titles)}")),
        "fast encoder, cache on, emptied each call": (cache(True, clear=True), write),
        "fast encoder, cache on, another run each call": (cache(True), another),
    }
    table(interleaved(cases, args.repeats))

    figures = {"learning_curves": plots.learning_curves(result, TITLE),
               "gradient_norms": plots.gradient_norms(result, TITLE),
               "gradient_flow": plots.gradient_flow(result.history[0], result.history[-1],
                                                    TITLE),
               "decision_boundary": plots.decision_boundary(net, dataset, TITLE)}
    print(f"canvas.draw() per figure, median of {args.repeats}: cache off, on (warm), on / off")
    for name, fig in figures.items():
        fig.canvas.draw()
        t = interleaved({"off": (cache(False), fig.canvas.draw),
                         "on": (cache(True), fig.canvas.draw)}, args.repeats)
        w, h = fig.canvas.get_width_height()
        print(f"  {name:18s} {w}x{h} px  {t['off'] * 1000:6.1f} ms  {t['on'] * 1000:6.1f} ms"
              f"  {t['on'] / t['off']:5.2f}")

    records = result.history[::5][:10]
    print(f"gradient_flow_frames, {len(records)} frames, median of {args.repeats}")
    plots.gradient_flow_frames(records, TITLE)
    table(interleaved({
        "text cache off": (cache(False), lambda: plots.gradient_flow_frames(records, TITLE)),
        "text cache on (warm)": (cache(True), lambda: plots.gradient_flow_frames(records, TITLE)),
    }, args.repeats))
    text_tiles.TEXT_CACHE.enabled = True
    print(f"tiles kept {len(text_tiles.TEXT_CACHE)} of {text_tiles.TEXT_CACHE.max_tiles}; "
          f"load average {load()}")


if __name__ == "__main__":
    main()
