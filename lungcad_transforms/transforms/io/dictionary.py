"""Loading, checking and saving scans as MONAI dictionary transforms."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import PostFix, TransformBackends

from lungcad_transforms.data.image_writer import write_image
from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.io.array import LoadScan, ValidateCT

__all__ = [
    "ValidateCTd",
    "ValidateCTD",
    "ValidateCTDict",
    "LoadScand",
    "LoadScanD",
    "LoadScanDict",
    "RequireForegroundd",
    "RequireForegroundD",
    "RequireForegroundDict",
    "SaveNiftid",
    "SaveNiftiD",
    "SaveNiftiDict",
]


class ValidateCTd(MapTransform):
    """Dictionary-based :class:`ValidateCT`: checks each key's image, returns the data unchanged.

    Examples:
        >>> data = {"image": MetaTensor(torch.full((1, 8, 8, 4), -1000.0), meta={"modality": "CT"})}
        >>> ValidateCTd(keys="image")(data)["image"].shape
        torch.Size([1, 8, 8, 4])
    """

    backend = ValidateCT.backend

    def __init__(
        self, keys: KeysCollection, max_air_hu: float = -500.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.validator = ValidateCT(max_air_hu=max_air_hu)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.validator(d[key])
        return d


ValidateCTD = ValidateCTDict = ValidateCTd


class LoadScand(MapTransform):
    """Dictionary-based :class:`LoadScan`.

    The first key is the scan: it is loaded together with the entry's ``seriesuid`` (which picks the series
    in a folder holding several). Further keys (labels, masks) are loaded as plain files. A key may hold an
    image already in memory instead of a path (a ``MetaTensor``, or an array whose metadata is under
    ``<key>_meta_dict``, as MONAI Deploy's bundle operator hands it over): it goes through the same
    geometry contract (channel first, RAS), see :func:`~lungcad_transforms.data.image_reader.load_image`.

    Args:
        keys: scan key first, then label keys.
        seriesuid_key: entry key holding the series UID; when the entry has none, the loaded one is written
            there, so later steps (file names, candidate rows) can use it.

    Examples:
        >>> data = LoadScand(["image", "label"])({"image": "case_000.nii.gz", "label": "case_000_label.nii.gz"})  # doctest: +SKIP
        >>> data["image"].shape == data["label"].shape, data["seriesuid"]  # doctest: +SKIP
        (True, 'case_000')
        >>> ct = MetaTensor(torch.full((8, 8, 4), -1000.0), affine=torch.diag(torch.tensor([-1.0, -1, 2, 1])))
        >>> out = LoadScand("image")({"image": ct})  # in memory, no channel, LPS-ordered axes
        >>> tuple(out["image"].shape), out["image"].meta["filename_or_obj"], tuple(ct.shape)
        ((1, 8, 8, 4), '<in-memory image>', (8, 8, 4))
    """

    backend = LoadScan.backend

    def __init__(
        self, keys: KeysCollection, seriesuid_key: str = "seriesuid", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadScan()
        self.seriesuid_key = seriesuid_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for n, key in enumerate(self.key_iterator(d)):
            if n == 0:
                entry = {"image": d[key], "seriesuid": d.get(self.seriesuid_key) or None}
                if d.get("modality") is not None:
                    entry["modality"] = d["modality"]
                if d.get(PostFix.meta(key)) is not None:  # an in-memory array's metadata
                    entry["meta"] = d[PostFix.meta(key)]
                d[key] = self.loader(entry)
                d[self.seriesuid_key] = str(d[key].meta.get("seriesuid", ""))
            else:
                d[key] = self.loader(d[key], d.get(PostFix.meta(key)))
        return d


LoadScanD = LoadScanDict = LoadScand


class RequireForegroundd(MapTransform):
    """Raise ``InputError`` when a mask key holds no foreground; pass the data through otherwise.

    Put after ``LungMaskd``: a CT without lungs (an abdomen slab, a head scan, a phantom without air) gives an
    empty lung mask, and ``CropForegroundd`` would crop the scan to nothing further down.

    Args:
        keys: the mask keys to check.
        what: what the mask shows, for the message ("lungs").
        source_key: key whose ``meta["filename_or_obj"]`` names the scan in the message.

    Examples:
        >>> empty = MetaTensor(torch.zeros(1, 8, 8, 8), meta={"filename_or_obj": "abdomen.nii.gz"})
        >>> RequireForegroundd("lung_image")({"image": empty, "lung_image": empty})
        Traceback (most recent call last):
        ...
        lungcad_transforms.errors.InputError: abdomen.nii.gz: no lungs found (lung_image is empty): not a chest CT?
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        what: str = "lungs",
        source_key: str = "image",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.what = what
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            if not bool((torch.as_tensor(d[key]) > 0).any()):
                source = d.get(self.source_key, d[key])
                meta = source.meta if isinstance(source, MetaTensor) else {}
                where = str(meta.get("filename_or_obj") or d.get("seriesuid") or key)
                raise InputError(where, f"no {self.what} found ({key} is empty): not a chest CT?")
        return d


RequireForegroundD = RequireForegroundDict = RequireForegroundd


class SaveNiftid(MapTransform):
    """Write each key's map as ``<output_dir>/<seriesuid>/<seriesuid>_<postfix>.nii.gz``, atomically.

    Written with :func:`lungcad_transforms.data.image_writer.write_image`: on the input file's own voxel
    grid (shape, affine, axis order) when the map carries the ``source_*`` metadata of
    :func:`~lungcad_transforms.data.image_reader.load_image`, so the file overlays the user's scan voxel by
    voxel: flipped back without interpolation when the map lies on the loaded scan's grid (after
    ``Invertd``), resampled otherwise (nearest for integer dtypes, bilinear for floating point). Without
    that metadata the map is written on its own ``MetaTensor`` affine (identity for a plain array). Writing goes to a temporary sibling first, so a crash never leaves a half-written file under the
    final name.

    Args:
        keys: maps to write, each ``(1, X, Y, Z)``.
        output_dir: folder for the outputs (one sub-folder per scan).
        postfixes: file name postfix per key (e.g. ``"prob"``, ``"mask"``).
        dtypes: numpy dtype per key (``float32`` probabilities, ``uint8`` masks).
        seriesuid_key: data key with the scan's id (used for the file names).
        path_key_postfix: the written path is stored under ``f"{key}_{path_key_postfix}"``.

    Examples:
        >>> prob = MetaTensor(torch.rand(1, 64, 64, 32), affine=torch.diag(torch.tensor([0.7, 0.7, 1.25, 1.0])))
        >>> d = SaveNiftid("prob", "/tmp/out", "prob", "float32")({"prob": prob, "seriesuid": "1.2.840.1"})  # doctest: +SKIP
        >>> d["prob_path"]  # doctest: +SKIP
        '/tmp/out/1.2.840.1/1.2.840.1_prob.nii.gz'
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        postfixes: str | Sequence[str],
        dtypes: Any | Sequence[Any] = "float32",
        seriesuid_key: str = "seriesuid",
        path_key_postfix: str = "path",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        n = len(self.keys)
        self.output_dir = Path(output_dir)
        self.postfixes = [postfixes] * n if isinstance(postfixes, str) else list(postfixes)
        self.dtypes = [dtypes] * n if isinstance(dtypes, (str, type, np.dtype)) else list(dtypes)
        if len(self.postfixes) != n or len(self.dtypes) != n:
            raise ValueError(f"need one postfix and one dtype per key ({n} keys)")
        self.seriesuid_key = seriesuid_key
        self.path_key_postfix = path_key_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, postfix, dtype in self.key_iterator(d, self.postfixes, self.dtypes):
            img = d[key]
            uid = str(
                d.get(self.seriesuid_key)
                or (img.meta.get("seriesuid") if isinstance(img, MetaTensor) else "")
            )
            if not uid:
                raise ValueError(f"no {self.seriesuid_key!r} to name the output of {key!r}")
            safe = uid.replace(os.sep, "_")
            path = self.output_dir / safe / f"{safe}_{postfix}.nii.gz"
            out_dtype = np.dtype(dtype)
            mode = "bilinear" if np.issubdtype(out_dtype, np.floating) else "nearest"
            img = img if isinstance(img, MetaTensor) else MetaTensor(torch.as_tensor(img))
            write_image(img, path, dtype=out_dtype, mode=mode)
            d[f"{key}_{self.path_key_postfix}"] = str(path)
        return d


SaveNiftiD = SaveNiftiDict = SaveNiftid
