"""The BLAS thread limit around training.

ffexp's matrices are small (n[l] of tens to hundreds, batches of tens): a multi-threaded BLAS
spends more on waking and syncing its threads than it gains (10× slower on a busy 2-core
machine) and oversubscribes the cores of a parallel sweep. So training runs with one BLAS
thread by default, in the command (``train.blas_threads``) and in ``ffexp.train``
(``blas_threads``). The limit lives here, not in ``ffexp.nn``, which imports numpy only.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from ffexp.nn import checks

_controller = None


def limit(threads: int | None) -> AbstractContextManager:
    """A context in which the BLAS libraries use at most ``threads`` threads (None: leave the
    library's default), restored on exit."""
    if threads is None:
        return nullcontext()
    checks.positive_int("blas_threads", threads)
    global _controller
    if _controller is None:   # finding the loaded libraries costs ~10 ms: once per process
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller.limit(limits=threads, user_api="blas")
