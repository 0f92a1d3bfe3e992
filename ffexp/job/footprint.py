"""Will the network fit in memory? Estimated from the layer sizes before anything is allocated,
so that a network too large for the machine is refused in one line naming
``model.hidden_sizes``, not met as a MemoryError (or the kernel's OOM killer) mid-build.

The estimate is a lower bound on what training holds at once, in bytes::

    P     = Σ_l n[l] (n[l-1] + 1)            parameters: W[l] (n[l] × n[l-1]) and b[l]
    need  = itemsize · (2 P + 2 m Σ_l n[l])  W, b and their gradients dW, db; Z[l] and A[l]
                                             of the largest split's m columns (the metrics'
                                             forward pass over a whole split)

with n[0] the input features, n[L] the outputs and itemsize 8 (float64) or 4 (float32). It is
compared with the memory available to this process: the smallest of ``MemAvailable``
(/proc/meminfo) and the cgroup's limit less its usage (/sys/fs/cgroup), else the physical
memory; where none can be read, nothing is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def parameters(sizes: Sequence[int]) -> int:
    """P = Σ_l n[l] (n[l-1] + 1) for sizes [n[0], ..., n[L]] (Python integers: no overflow)."""
    return sum(int(n) * (int(n_prev) + 1) for n_prev, n in zip(sizes, sizes[1:]))


def bytes_needed(sizes: Sequence[int], dtype: str, columns: int) -> int:
    """The module's lower bound, in bytes, for ``columns`` = m, the largest split's size."""
    itemsize = np.dtype(dtype).itemsize
    return itemsize * (2 * parameters(sizes) + 2 * int(columns) * sum(int(n) for n in sizes[1:]))


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available() -> int | None:
    """Bytes of memory this process can still take (see the module doc), or None."""
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if found:
        return min(found)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def check_fits(hidden_sizes: Sequence[int], sizes: Sequence[int], dtype: str,
               columns: int, free: int | None = None) -> None:
    """ValueError naming model.hidden_sizes if the network of layer ``sizes`` cannot fit in
    the memory available (``free`` bytes; default: ``available()``)."""
    free = available() if free is None else free
    need = bytes_needed(sizes, dtype, columns)
    if free is None or need <= free:
        return
    hidden = "[" + ",".join(str(n) for n in hidden_sizes) + "]"
    raise ValueError(f"model.hidden_sizes={hidden}: the network has {parameters(sizes):,} "
                     f"parameters and training it needs at least {_size(need)} as {dtype} "
                     f"(weights, gradients, one split's activations), more than the "
                     f"{_size(free)} of memory available; choose smaller hidden layers")
