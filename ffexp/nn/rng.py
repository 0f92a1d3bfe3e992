"""Explicit randomness: one seed, independent numpy Generators per purpose.

Every random draw in ffexp comes from a Generator made here, never from the global
``np.random`` state. Each purpose gets its own stream of the seed's ``SeedSequence``, so that
changing, say, the batch size (which changes how many shuffles are drawn) cannot change the
initial weights or the data split.
"""

from __future__ import annotations

import numpy as np

#: The independent streams of one seed. Adding a stream never changes the existing ones.
STREAMS = {"data": 0, "init": 1, "shuffle": 2}


def stream(seed: int, purpose: str) -> np.random.Generator:
    """The Generator for ``purpose`` (one of STREAMS) derived from ``seed``."""
    if purpose not in STREAMS:
        raise ValueError(f"unknown random stream {purpose!r}; expected one of {sorted(STREAMS)}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(STREAMS[purpose],)))
