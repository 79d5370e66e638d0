"""Cross-process file locks for data that several ranks create at once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

__all__ = ["dataset_lock"]


@contextlib.contextmanager
def dataset_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (a sibling ``.<name>.lock`` file) across processes.

    The DDP ranks of one run all call the dataset builder: the first one builds, the others wait and then
    find the dataset complete. ``filelock.FileLock`` works on POSIX and Windows.

    Examples:
        >>> with dataset_lock("/tmp/lungcad_data/phantoms"):  # doctest: +SKIP
        ...     build_if_missing("/tmp/lungcad_data/phantoms")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.parent / f".{path.name}.lock"):
        yield
