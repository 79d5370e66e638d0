"""Seeded random streams: every random draw of a phantom comes from ``(seed, stream, *extra)``.

One stream per purpose keeps the draws independent: the PET noise of a case never changes its anatomy,
and asking for more nodules never moves the vessels. The makers add the grid shape as ``extra`` to the
image streams, so a CT of another size of the same patient gets its own noise.
"""

from __future__ import annotations

import numpy as np

__all__ = []


STREAM_SPACING, STREAM_ANATOMY, STREAM_NODULES, STREAM_CT, STREAM_PET, STREAM_MR = range(6)


def stream_rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """The generator of one stream of ``seed`` (any int: it is taken modulo 2**32)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, *extra])
