"""Atomic outputs: a file or folder appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_file", "atomic_dir"]


def _suffixes(path: Path) -> str:
    # keep ".nii.gz" etc., so writers that choose their format by extension still do
    return "".join(path.suffixes)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The temporary name keeps the file's extensions (``.nii.gz``, ``.csv``), so a writer that picks
    its format from the name (nibabel, ITK) writes the right format. On any exception the temporary
    file is removed and ``path`` is left as it was.

    Examples:
        >>> import nibabel as nib, numpy as np
        >>> with atomic_file("/tmp/mask.nii.gz") as tmp:  # doctest: +SKIP
        ...     nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=_suffixes(path), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``.

    Used for outputs made of many files (a DICOM series): readers never see a partial series.
    An existing ``path`` is replaced only once the new content is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp_path
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp_path, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, path)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise
