"""The numeric environment of a process: what decides a run's floating-point bits besides the
code, the config and the seed.

The same code, config and seed give different bits under another BLAS kernel: OpenBLAS picks
its kernel (Haswell, SkylakeX, Zen, …) for the CPU when it loads, unless ``OPENBLAS_CORETYPE``
names one, and each kernel sums a matrix product in its own order. Where training is chaotic a
last-bit difference grows to a different result. Every job run records, as tags:

    ffexp.env.numpy              numpy.__version__
    ffexp.env.blas               numpy's BLAS library: threadpoolctl's ``internal_api``
                                 (openblas, mkl, blis, …)
    ffexp.env.blas_version       its ``version``
    ffexp.env.blas_kernel        its ``architecture``: the kernel it runs (OpenBLAS: Haswell,
                                 SkylakeX, …); "unknown" when the library does not say
    ffexp.env.openblas_coretype  $OPENBLAS_CORETYPE, only when it is set
    ffexp.env.cpu                /proc/cpuinfo's first ``model name`` (else platform.processor())
    ffexp.env.dtype              the network's dtype, ``model.dtype`` of the run's config

numpy's BLAS is the loaded library (threadpoolctl, user_api "blas") whose file lies in numpy's
own folders (``numpy/``, ``numpy.libs/``); where none does (a system or conda BLAS), the first
one loaded.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

PREFIX = "ffexp.env."
#: the tags' short names, in the order provenance.md lists them, with what each names
FIELDS = {"numpy": "numpy version", "blas": "BLAS library", "blas_version": "BLAS version",
          "blas_kernel": "BLAS kernel (threadpoolctl architecture)",
          "openblas_coretype": "OPENBLAS_CORETYPE", "cpu": "CPU model", "dtype": "dtype"}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` of /proc/cpuinfo; platform.processor() (or machine()) elsewhere."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def numpy_blas(info: list[dict], numpy_dir: Path) -> dict:
    """numpy's entry among threadpoolctl's ``threadpool_info()`` (see the module doc); {} when
    no BLAS is loaded."""
    blas = [i for i in info if i.get("user_api") == "blas"]
    root = numpy_dir.parent
    own = [i for i in blas
           if Path(i.get("filepath", "")).is_relative_to(numpy_dir)
           or Path(i.get("filepath", "")).is_relative_to(root / "numpy.libs")]
    return (own or blas or [{}])[0]


@functools.lru_cache(maxsize=1)
def _process_env() -> tuple[tuple[str, str], ...]:
    import numpy as np
    from threadpoolctl import threadpool_info

    lib = numpy_blas(threadpool_info(), Path(np.__file__).resolve().parent)
    env = {"numpy": np.__version__, "blas": lib.get("internal_api") or "none",
           "blas_version": lib.get("version") or "unknown",
           "blas_kernel": lib.get("architecture") or "unknown"}
    if os.environ.get("OPENBLAS_CORETYPE"):
        env["openblas_coretype"] = os.environ["OPENBLAS_CORETYPE"]
    env["cpu"] = cpu_model()
    return tuple(env.items())


def environment(dtype: str | None = None) -> dict[str, str]:
    """The short names of FIELDS -> values for this process (numpy imported, BLAS loaded, once
    per process: threadpoolctl's scan of the loaded libraries costs ~10 ms), with ``dtype``."""
    env = dict(_process_env())
    if dtype is not None:
        env["dtype"] = str(dtype)
    return env


def tags(dtype: str | None = None) -> dict[str, str]:
    """``environment(dtype)`` as run tags, ``ffexp.env.<name>``."""
    return {PREFIX + k: v for k, v in environment(dtype).items()}
