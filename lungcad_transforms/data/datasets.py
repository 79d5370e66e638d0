"""Datalists and Dataset classes the bundles share, and where a bundle lives."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import IterableDataset
from monai.transforms import (
    apply_transform,
)

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["resolve_scans", "REPO_ROOT", "bundle_dir", "SkipBadScansDataset"]


def resolve_scans(
    scans: str | os.PathLike | Sequence[Mapping[str, Any]], split: str | None = None
) -> list[dict[str, Any]]:
    """Turn a folder of scans, a datalist JSON, or a list of dicts into ``[{"image", "seriesuid"}]``.

    Args:
        scans: a folder (searched with ``io.find_images``: DICOM series at any depth, NIfTI, MetaImage),
            a JSON datalist (a list, or a dict whose lists of ``{"image": ...}`` entries are taken),
            or a list of dicts with ``image`` (and ``seriesuid``; else the file name without extension).
        split: with a JSON datalist that is a dict, take only its list under this key (``"training"``,
            ``"validation"``, ``"test"``).

    Returns:
        the scans, one dict each, with ``image`` made absolute for JSON datalists.
    """
    if isinstance(scans, (str, os.PathLike)):
        path = Path(scans)
        if path.is_dir():
            from lungcad_transforms.data.image_reader import find_images

            found = find_images(path)
            return [dict(entry) for entry in found]
        if path.is_file() and path.suffix == ".json":
            return [_with_seriesuid(e) for e in _read_datalist(path, split)]
        raise InputError(
            path, "scans must be a folder of images or a JSON datalist" if path.exists() else "does not exist"
        )
    return [_with_seriesuid(dict(e)) for e in scans]


def _read_datalist(path: Path, split: str | None) -> list[dict[str, Any]]:
    """The entries of a JSON datalist with an ``image``, their paths resolved against the JSON's folder."""
    from monai.data import load_decathlon_datalist

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"is not a valid JSON datalist: {err}") from err
    if isinstance(content, list):
        # a bare list of entries: MONAI's reader takes only the Decathlon form, a dict of lists
        entries = [dict(e) for e in content if isinstance(e, Mapping) and "image" in e]
        for entry in entries:
            image = Path(str(entry["image"]))
            entry["image"] = os.path.normpath(image if image.is_absolute() else path.parent / image)
    else:
        if not isinstance(content, dict):
            raise InputError(path, f"is not a JSON datalist (a {type(content).__name__}, not a dict or list)")
        if split is not None and not isinstance(content.get(split), list):
            raise InputError(path, f"datalist has no {split!r} list (keys: {', '.join(content)})")
        keys = [split] if split is not None else [k for k, v in content.items() if isinstance(v, list)]
        entries = []
        for key in keys:
            try:
                entries += load_decathlon_datalist(path, is_segmentation=False, data_list_key=key)
            except (TypeError, IndexError) as err:  # an entry that is not an object
                raise InputError(path, f"datalist list {key!r} is not a list of entries: {err}") from err
        entries = [e for e in entries if "image" in e]
    if not entries:
        raise InputError(path, "datalist holds no entries with an 'image' key")
    return entries


def _with_seriesuid(entry: dict[str, Any]) -> dict[str, Any]:
    if not entry.get("seriesuid"):
        name = Path(str(entry["image"])).name
        for suffix in (".nii.gz", ".nii", ".mhd", ".mha", ".nrrd"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        entry["seriesuid"] = name
    return entry


REPO_ROOT = Path(__file__).resolve().parents[2]


def find_bundle(
    bundle: str | os.PathLike, roots: Sequence[str | os.PathLike] | None = None, needs: Sequence[str] = ()
) -> Path | None:
    """The folder of a bundle: ``bundle`` itself when it is a bundle folder, else ``<root>/<bundle>``.

    A bundle folder holds ``configs/metadata.json`` (and every file of ``needs``, relative to it). Without
    ``roots`` the places looked in are, in order: the current folder when it is the bundle (running Model
    Zoo style from inside it), ``./bundles`` (running from the repository root) and the ``bundles/`` beside
    the installed ``lungcad_transforms`` package (an editable install run from elsewhere).

    Returns:
        the resolved folder, or ``None`` when none of the places holds it.

    Examples:
        >>> find_bundle("lung_nodule_ct_segmentation").name
        'lung_nodule_ct_segmentation'
        >>> find_bundle("no_such_bundle") is None
        True
    """
    path = Path(bundle)
    here = Path.cwd()
    if roots is None:
        places = [path, *([here] if here.name == path.name else []), here / "bundles" / path]
        places.append(REPO_ROOT / "bundles" / path)
    else:
        places = [Path(root) / path for root in roots]
    for folder in places:
        if all((folder / rel).is_file() for rel in ("configs/metadata.json", *needs)):
            return folder.resolve()
    return None


def bundle_dir(name: str) -> str:
    """The folder of bundle ``name`` (:func:`find_bundle`), for configs whose ``bundle_root`` should not
    depend on the cwd; the current folder when it is found nowhere.

    Examples:
        >>> bundle_dir("lung_nodule_ct_segmentation")  # from the repository root  # doctest: +SKIP
        '/home/me/lungcad/bundles/lung_nodule_ct_segmentation'
    """
    return str(find_bundle(name) or Path.cwd())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks: what a bundle's ``large_files.yml`` records of its weights.

    Examples:
        >>> file_sha256(REPO_ROOT / "bundles" / "lung_nodule_ct_segmentation" / "LICENSE")[:8]  # doctest: +SKIP
        '3ca1f1a4'
    """
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _root_cause(err: BaseException) -> BaseException:
    # MONAI wraps a failing transform's error in RuntimeError("applying transform ..."): report the original
    while err.__cause__ is not None and isinstance(err, RuntimeError):
        err = err.__cause__
    return err


def _where(item: Any) -> str:
    if isinstance(item, Mapping):
        image = item.get("image", item.get("seriesuid", "<entry>"))
        return str(image[0] if isinstance(image, (list, tuple)) and image else image)
    return str(item)


class SkipBadScansDataset(IterableDataset):
    """Iterate over datalist entries through ``transform``, logging and skipping entries that fail.

    A folder handed to inference may hold a scan that is not CT, a series with a truncated file, a CT
    without lungs: each raises (``InputError`` mostly) while it is loaded or preprocessed. This dataset
    reports the scan and the reason in the log, keeps them in :attr:`skipped`, and goes on with the next
    one. Use it with ``num_workers=0`` (the default of inference) so :attr:`skipped` is complete.

    Args:
        data: datalist entries (dicts with ``"image"``).
        transform: the preprocessing.
        errors: exception types that mark a bad scan (anything else, e.g. ``KeyboardInterrupt``, stops).

    Examples:
        >>> ds = SkipBadScansDataset([{"image": "good.nii.gz"}, {"image": "mr.nii.gz"}], preprocessing)  # doctest: +SKIP
        >>> [d["seriesuid"] for d in ds], ds.skipped  # doctest: +SKIP
        (['good'], [('mr.nii.gz', 'mr.nii.gz: modality is MR, not CT')])
    """

    def __init__(
        self,
        data: Iterable[Any],
        transform: Callable | None = None,
        errors: Sequence[type[BaseException]] = (Exception,),
    ) -> None:
        super().__init__(data=list(data), transform=transform)
        self.errors = tuple(errors)
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        n_workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        self.skipped = []
        for i, item in enumerate(self.data):
            if i % n_workers != worker:
                continue
            try:
                out = apply_transform(self.transform, item) if self.transform is not None else item
            except self.errors as err:
                cause = _root_cause(err)
                self.skipped.append((_where(item), str(cause)))
                logger.error("skipping scan %s: %s", _where(item), cause)
                continue
            yield out
