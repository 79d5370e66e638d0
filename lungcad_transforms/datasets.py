"""The bundles' embedded default data, and where a bundle lives.

With nothing configured, a lungcad bundle's ``dataset_dir`` is a small synthetic chest-CT dataset
(:func:`lungcad_transforms.writers.write_phantom_dataset`) that the bundle writes on first use under its
own ``data/`` folder, so a fresh clone trains, evaluates and infers out of the box. Writing it takes a
minute; later runs find it and reuse it. Under ``torchrun`` every process asks for the dataset at the
same moment: :func:`ensure_phantom_dataset` holds an exclusive file lock while it checks and writes, so
one process writes and the others wait and reuse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from lungcad_transforms.errors import InputError

__all__ = ["bundle_dir", "ensure_phantom_dataset", "dataset_lock"]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def bundle_dir(name: str) -> str:
    """The folder of bundle ``name``, for configs whose ``bundle_root`` should not depend on the cwd.

    Looked for, in order: the current folder when it is the bundle (``configs/metadata.json`` inside and
    the folder named ``name``, as when running Model Zoo style from inside the bundle),
    ``./bundles/<name>`` (running from the repository root), and ``bundles/<name>`` beside the installed
    ``lungcad_transforms`` package (an editable install run from elsewhere). Otherwise the current folder.

    Examples:
        >>> bundle_dir("lung_nodule_ct_segmentation")  # from the repository root  # doctest: +SKIP
        '/home/me/lungcad/bundles/lung_nodule_ct_segmentation'
    """
    here = Path.cwd()
    if here.name == name and (here / "configs" / "metadata.json").is_file():
        return str(here)
    for candidate in (here / "bundles" / name, REPO_ROOT / "bundles" / name):
        if (candidate / "configs").is_dir():
            return str(candidate.resolve())
    return str(here)


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


def ensure_phantom_dataset(
    dataset_dir: str | os.PathLike,
    n_train: int = 24,
    n_val: int = 6,
    n_test: int = 6,
    seed: int = 0,
    shape: Sequence[int] = (128, 128, 128),
    formats: Sequence[str] = ("nifti",),
    **phantom_kwargs,
) -> str:
    """Create the synthetic dataset at ``dataset_dir`` once; return ``dataset_dir`` (for a config's ``dataset_dir``).

    Writes ``n_train + n_val + n_test`` chest-CT phantoms with nodule labels, lung masks, a MONAI datalist
    (``datalist.json``: "training", "validation", "test") and LUNA16 ``annotations.csv`` through
    :func:`lungcad_transforms.writers.write_phantom_dataset`, atomically and under a cross-process lock.
    A folder already holding this dataset is reused as it is; one holding a dataset written with other
    arguments is reused too (with a log line saying so), never silently rewritten.

    Args:
        dataset_dir: where the dataset lives (a bundle uses ``<bundle>/data/phantoms``).
        n_train, n_val, n_test: cases per split.
        seed: case ``i`` is drawn from ``(seed, i)``.
        shape: voxels per case; spacing is drawn per case like a real scanner (0.6-0.9 mm in-plane,
            0.625-2.5 mm slices) unless ``spacing=`` is passed.
        formats: image formats to write ("nifti", "mhd", "mha", "dicom"); the datalist's ``image`` is the first.
        phantom_kwargs: more arguments of ``write_phantom_dataset`` (``spacing``, ``n_nodules``, ...).

    Returns:
        ``str(dataset_dir)``.

    Raises:
        InputError: ``dataset_dir`` exists and holds something else than a phantom dataset.

    Examples:
        >>> root = ensure_phantom_dataset("/tmp/phantoms", n_train=2, n_val=1, n_test=1, shape=(64, 64, 48))  # doctest: +SKIP
        >>> sorted(json.load(open(root + "/datalist.json")))  # doctest: +SKIP
        ['test', 'training', 'validation']
    """
    from lungcad_transforms.writers import write_phantom_dataset

    dataset_dir = Path(dataset_dir)
    n_cases = int(n_train) + int(n_val) + int(n_test)
    if min(n_train, n_val, n_test) < 0 or n_train < 1:
        raise ValueError(f"need n_train >= 1 and n_val, n_test >= 0; got {n_train}, {n_val}, {n_test}")
    with dataset_lock(dataset_dir):
        datalist = dataset_dir / "datalist.json"
        manifest = dataset_dir / "phantom_dataset.json"
        if datalist.is_file() and manifest.is_file():
            written = json.loads(manifest.read_text())
            wanted = {"n_cases": n_cases, "seed": int(seed), "shape": [int(s) for s in shape]}
            if any(written.get(k) != v for k, v in wanted.items()):
                logger.info(
                    "reusing the synthetic dataset in %s (%s cases, seed %s, shape %s); delete it to get %s",
                    dataset_dir,
                    written.get("n_cases"),
                    written.get("seed"),
                    written.get("shape"),
                    wanted,
                )
            return str(dataset_dir)
        elif dataset_dir.exists() and any(dataset_dir.iterdir()):
            raise InputError(
                dataset_dir,
                "holds files but no synthetic dataset (no datalist.json / phantom_dataset.json); point dataset_dir "
                "at your prepared data, or remove this folder to let the bundle write its synthetic data",
            )
        logger.info(
            "writing the built-in synthetic dataset (%d chest CT phantoms) to %s", n_cases, dataset_dir
        )
        write_phantom_dataset(
            dataset_dir,
            n_cases,
            seed=seed,
            shape=shape,
            formats=formats,
            val_fraction=n_val / n_cases,
            test_fraction=n_test / n_cases,
            **phantom_kwargs,
        )
    return str(dataset_dir)
