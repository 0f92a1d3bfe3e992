"""Run a study exactly as its README says, and time it.

Each ``experiments/<study>/README.md`` gives its one command in a ```bash block: ``ffexp -m
+experiment=<study> && ffexp-report ... && python experiments/<study>/analyze.py``. ``steps``
reads that command and splits it at ``&&`` into argument lists; ``run`` runs them in order from
a working directory (the repository root, or a scratch copy for the reproducibility test) and
returns the seconds they took. The README is the single source of the command: what the test
reruns is what a reader runs.

    python experiments/studyrun.py vanishing_gradients losses   # from the repository root

Every step runs under one pinned OpenBLAS kernel, ``OPENBLAS_CORETYPE=Haswell`` (KERNEL): the
kernel every x86-64 CPU with AVX2 can run. OpenBLAS reads the variable when it loads, so it is
set in the environment of each step's process, before numpy is imported there; ``kernel``
asks threadpoolctl in such a process which kernel numpy's BLAS really runs, and ``main``
refuses to run a study when it is not KERNEL (a CPU without AVX2, another BLAS). Under another
kernel, training in chaotic cells gives other numbers (docs/reports.md, the chaos probe); the
kernel each run used is in its report's provenance.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: the OpenBLAS kernel every study runs under (OPENBLAS_CORETYPE)
KERNEL = "Haswell"
#: every study folder: one holding <name>/<name>.yaml
STUDIES = sorted(p.parent.name for p in HERE.glob("*/*.yaml") if p.stem == p.parent.name)


def steps(name: str, bin_dir: Path | None = None) -> list[list[str]]:
    """The study's README command as argument lists, ``ffexp``/``ffexp-report`` taken from
    ``bin_dir`` and ``python`` replaced by this interpreter (default: the running ones)."""
    text = (HERE / name / "README.md").read_text()
    found = re.search(rf"```bash\n(ffexp -m \+experiment={name}\b[^\n]*)\n```", text)
    if not found:
        raise SystemExit(f"studyrun: error: experiments/{name}/README.md has no "
                         f"'ffexp -m +experiment={name} && ...' command in a bash block")
    bin_dir = bin_dir or Path(sys.executable).parent
    out = []
    for part in found.group(1).split("&&"):
        args = shlex.split(part)
        if args[0] in ("ffexp", "ffexp-report"):
            args[0] = str(bin_dir / args[0])
        elif args[0] == "python":
            args[0] = sys.executable
        out.append(args)
    return out


def pinned(env: dict | None = None) -> dict:
    """``env`` (default: this process's environment) with OPENBLAS_CORETYPE = KERNEL."""
    return {**(os.environ if env is None else env), "OPENBLAS_CORETYPE": KERNEL}


def kernel(env: dict) -> str:
    """The kernel (threadpoolctl's ``architecture``) numpy's BLAS runs in a fresh interpreter
    started with ``env``, as ffexp records it (ffexp.tracking.numeric_env)."""
    code = ("from ffexp.tracking.numeric_env import environment; "
            "print(environment()['blas_kernel'])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def run(name: str, cwd: Path, env: dict | None = None) -> float:
    """Run the study's command in ``cwd`` under KERNEL (``pinned(env)``); seconds taken.
    Raises CalledProcessError on failure."""
    env = pinned(env)
    start = time.perf_counter()
    for args in steps(name):
        subprocess.run(args, cwd=cwd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("studies", nargs="*", default=STUDIES, help="default: every study")
    args = p.parse_args()
    root = HERE.parent
    used = kernel(pinned())
    if used != KERNEL:
        raise SystemExit(f"studyrun: error: OPENBLAS_CORETYPE={KERNEL} gives the BLAS kernel "
                         f"{used!r}, not {KERNEL!r}: the committed reports were made under "
                         f"{KERNEL} (an x86-64 CPU with AVX2 and numpy's OpenBLAS)")
    print(f"studyrun: OpenBLAS kernel {used} (OPENBLAS_CORETYPE={KERNEL})", flush=True)
    for name in args.studies:
        if name not in STUDIES:
            raise SystemExit(f"studyrun: error: study={name!r} is not one of {', '.join(STUDIES)}")
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        seconds = run(name, root, env)
        print(f"{name}: {int(seconds // 60)} min {seconds % 60:.0f} s", flush=True)


if __name__ == "__main__":
    main()
