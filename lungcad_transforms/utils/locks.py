"""Cross-process file locks for data that several ranks create at once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["dataset_lock"]


@contextlib.contextmanager
def dataset_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (a sibling ``.<name>.lock`` file) across processes.

    POSIX ``fcntl.flock``; on systems without it (Windows) the block runs unlocked, which is only unsafe
    when several processes create the same dataset at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path.parent / f".{path.name}.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
