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
* ``gradient_flow_frames`` over 10 records (the step images), cache off and on (warm);
* a job's pictures (``--per-job``, alone): what a tracked run of the sweep's grid draws once
  training is over, without the store's writes: ``write_plots`` (the four PNGs) and the step
  images of ``tracking.snapshots=10`` (``Snapshots.frames``, each frame encoded as its PNG and
  its WebP thumbnail as ``tracking/images.py`` writes them), one job after another of
  ``--repeats`` different runs in one warm process (activation, init and seed change from job
  to job, as in a joblib worker of benchmarks/sweep.py), median and mean, in wall and CPU time
  (steadier when other work shares the cores), BLAS on one thread as in a job. To compare with
  another version of ffexp, run this script with that version's package first on PYTHONPATH;
  ``FFEXP_PLOTS_LAYERED=0`` draws every artist of the four plots on every job (issue 27).

Ratios are against the first row of each table, measured in the same run. The load averages
at the start and the end are printed: on the 2 shared cores another process moves every time.

    python benchmarks/plots.py [--repeats 21] [--per-job]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from ffexp._compat import mpl_text as text_tiles
from ffexp.job.app import execute, prepare
from ffexp.launch.config import to_settings
from ffexp.launch.main import register
from ffexp.plots import figures as plots
from ffexp.plots.png import png_bytes
from ffexp.tracking.images import write_thumbnail
from ffexp.tracking.snapshots import Snapshots

TITLE = "moons · relu·he·s0"


def load() -> str:
    """The 1, 5 and 15 minute load averages: another process on the cores skews the ratios."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def default_run(seed: int = 0):
    """The default config's job trained for 50 epochs: (TrainResult, network, dataset)."""
    register()   # what the entry point registers in Hydra (schemas, sweepers)
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


#: the sweep's grid (benchmarks/sweep.py): a warm worker's jobs are of every combination
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")
INITS = ("random", "xavier", "he", "zeros")


def snapshots_of(seed: int = 0, count: int = 10, activation: str = "relu", init: str = "he"):
    """A job of the sweep's grid trained for 50 epochs with a Snapshots callback of ``count``
    epochs: (TrainResult, network, dataset, Snapshots, its title)."""
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=["train.epochs=50", f"seed={seed}",
                                           f"activation={activation}", f"init={init}"])
    shots = Snapshots(count, 50)
    r = execute(prepare(to_settings(cfg)), [shots])
    return r.train, r.net, r.dataset, shots, f"moons · {activation}·{init}·s{seed}"


def per_job(repeats: int) -> None:
    """A job's pictures in a warm worker, one job after another of different runs (the
    sweep's grid: activation, init and seed change from one job to the next; two jobs first
    to warm the worker): the four PNGs and the step images' frames, drawn and encoded, with
    BLAS limited to one thread as a job draws them (``train.blas_threads=1``)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1, user_api="blas")
    runs = [snapshots_of(i // 20, 10, ACTIVATIONS[i % 5], INITS[(i // 5) % 4])
            for i in range(repeats + 2)]
    out = Path(tempfile.mkdtemp(prefix="ffexp-plots-bench-"))

    def step_images(run):
        result, net, dataset, shots, title = run
        frames = shots.frames(net, dataset, title, "full")
        for key, images in frames.items():
            for step, rgb in images:
                (out / f"{key}-{step}.png").write_bytes(png_bytes(rgb))
                write_thumbnail(rgb, out / f"{key}-{step}.webp")
        return frames

    def four_pngs(run):
        result, net, dataset, shots, title = run
        plots.write_plots(result, out, net, dataset, title)

    for run in runs[:2]:                         # figures made, fonts loaded, caches warm
        frames = step_images(run)
        four_pngs(run)
    sizes = ", ".join(f"{k} {len(v)} x {v[0][1].shape[1]}x{v[0][1].shape[0]} px"
                      for k, v in frames.items())
    print(f"a job's pictures, {repeats} jobs of different runs, median (CPU time in "
          f"brackets, mean CPU after it); step images: {sizes}")
    rows = {"write_plots (4 PNGs)": [], "step images (frames, PNG + WebP)": []}
    for run in runs[2:]:
        for name, call in zip(rows, (four_pngs, step_images)):
            c = time.process_time()
            rows[name].append((timed(lambda: call(run)), time.process_time() - c))
    rows["a job's pictures"] = [tuple(map(sum, zip(*parts))) for parts in zip(*rows.values())]
    for name, times in rows.items():
        wall, cpu = zip(*times)
        print(f"  {name:44s} {statistics.median(wall) * 1000:7.1f} ms  "
              f"({statistics.median(cpu) * 1000:6.1f} ms CPU, "
              f"mean {statistics.mean(cpu) * 1000:6.1f})")
    print(f"load average {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--per-job", action="store_true",
                    help="only a job's pictures: write_plots and the step images")
    args = ap.parse_args()
    print(f"load average {load()}")
    if args.per_job:
        per_job(args.repeats)
        return
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
