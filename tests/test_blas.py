"""ffexp.train limits BLAS to one thread by default (like the command), and says how to change it."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import ffexp


def blas_threads() -> list[int]:
    return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]


class Threads(ffexp.Callback):
    """The BLAS libraries' thread counts while training runs."""

    def on_epoch_end(self, net, stats):
        self.seen = blas_threads()


def train(**kwargs) -> list[int]:
    X = np.random.default_rng(0).normal(size=(2, 40))
    Y = (X[:1] > 0).astype(float)
    spy = Threads()
    ffexp.train(ffexp.Network([2, 4, 1]), X, Y, "bce", epochs=2, callbacks=[spy], **kwargs)
    return spy.seen


def test_one_blas_thread_by_default_and_restored_after():
    with threadpool_limits(limits=2, user_api="blas"):
        outside = blas_threads()
        assert train() == [1] * len(outside)
        assert blas_threads() == outside            # restored
        assert train(blas_threads=None) == outside  # None: the library's setting, untouched


def test_blas_threads_must_be_a_positive_integer_or_none():
    for bad in (0, 1.5, "2"):
        with pytest.raises(ValueError, match=f"blas_threads must be a positive integer, got {bad!r}"):
            train(blas_threads=bad)
