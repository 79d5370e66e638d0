"""Multi-scale candidate patches for false-positive reduction, and the candidate dataset around them.

Each candidate (a LUNA16 row: ``seriesuid,coordX,coordY,coordZ`` in world mm, LPS) is seen at three
scales, as in the multi-scale gradual-integration CNN of Kim et al. (2019). The paper cropped 20x20x6,
30x30x10 and 40x40x26 voxels of LUNA16 scans (roughly 14, 21 and 28 mm in-plane at LUNA16's typical
0.7 mm pixels) and resized all three to 20x20x6. Here the scales are physical boxes (by default
20x20x12, 30x30x18 and 40x40x24 mm), so that they mean the same on every scan whatever its spacing,
and each is resampled onto one common grid (``patch_size``, by default the paper's 20x20 in-plane and
12 voxels deep, which makes the voxels isotropic) whose centre is the candidate, exactly.

A scan is read once for all its candidates: :class:`MultiScalePatchDataset` loads each scan once,
samples the patches of all its candidates in one batched resampling call, and keeps them (float16)
for all epochs; with ``cache_dir`` they are also stored on disk, keyed by the scan file, the
candidates and the patch settings, so that the next run reads no scan at all.

Also here: a physically consistent random shift for the three scales (:class:`RandPhysicalShiftd`),
the tolerant candidate-table reader used at inference (bad rows are reported and skipped), the
hook for extra (e.g. CT-GAN synthesised) positive patches, and the two engine add-ons that map
network outputs back to candidate rows: the CPM metric (:class:`CandidateCPM`) and the LUNA16
results writer (:class:`CandidateResultsWriter`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform, Resample, ScaleIntensityRange, Transform
from monai.transforms.utils import create_grid
from monai.utils import TransformBackends

from lungcad_transforms.errors import InputError
from lungcad_transforms.outputs import atomic_file

__all__ = [
    "DEFAULT_SCALES_MM",
    "DEFAULT_PATCH_SIZE",
    "DEFAULT_HU_WINDOW",
    "PATCH_KEYS",
    "patch_affines",
    "extract_multiscale_patches",
    "MultiScalePatch",
    "MultiScalePatchd",
    "MultiScalePatchD",
    "MultiScalePatchDict",
    "RandPhysicalShift",
    "RandPhysicalShiftd",
    "RandPhysicalShiftD",
    "RandPhysicalShiftDict",
    "read_candidates_lenient",
    "resolve_scans",
    "load_extra_positives",
    "MultiScalePatchDataset",
    "CandidateCPM",
    "CandidateResultsWriter",
    "require_trained_model",
]

logger = logging.getLogger("lungcad.patches")

DEFAULT_SCALES_MM: tuple[tuple[float, float, float], ...] = (
    (20.0, 20.0, 12.0),
    (30.0, 30.0, 18.0),
    (40.0, 40.0, 24.0),
)
"""Physical extent (x, y, z mm) of the three scales, finest first."""
DEFAULT_PATCH_SIZE: tuple[int, int, int] = (20, 20, 12)
"""The common grid every scale is resampled to."""
DEFAULT_HU_WINDOW: tuple[float, float] = (-1000.0, 400.0)
"""HU range mapped to [0, 1] (clipped) before sampling, as in the MGI-CNN paper."""
PATCH_KEYS: tuple[str, str, str] = ("patch_s1", "patch_s2", "patch_s3")
"""Dataset keys of the three scales, finest first."""

_CACHE_VERSION = 1


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _check_scales(
    scales_mm: Sequence[Sequence[float]], patch_size: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    scales = np.asarray(scales_mm, dtype=np.float64)
    if scales.ndim == 1:
        scales = np.repeat(scales[:, None], 3, axis=1)
    if scales.ndim != 2 or scales.shape[1] != 3 or not np.all(scales > 0):
        raise ValueError(f"scales_mm must be positive (x, y, z) sizes per scale, got {scales_mm}")
    size = np.asarray(patch_size, dtype=np.int64)
    if size.shape != (3,) or not np.all(size > 0):
        raise ValueError(f"patch_size must be three positive ints, got {patch_size}")
    return scales, size


def patch_affines(
    image_affine: np.ndarray | torch.Tensor,
    centers_voxel: np.ndarray,
    scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
) -> np.ndarray:
    """The voxel -> RAS affine of every candidate's patch at every scale.

    Patch axes run along the scan's voxel axes (so no rotation is introduced), with voxel size
    ``scale_mm / patch_size``; the patch centre, ``(patch_size - 1) / 2``, maps to the candidate centre.

    Args:
        image_affine: the scan's 4x4 voxel -> RAS affine.
        centers_voxel: (N, 3) fractional voxel indices of the candidates in the scan.
        scales_mm: physical size of each scale.
        patch_size: the common grid size.

    Returns:
        (N, S, 4, 4) float64 affines.
    """
    scales, size = _check_scales(scales_mm, patch_size)
    affine = _np(image_affine).astype(np.float64)
    centers = np.atleast_2d(np.asarray(centers_voxel, dtype=np.float64))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / spacing
    centers_ras = centers @ affine[:3, :3].T + affine[:3, 3]
    out = np.zeros((len(centers), len(scales), 4, 4))
    out[..., 3, 3] = 1.0
    half = (size - 1) / 2.0
    for s, extent in enumerate(scales):
        linear = direction * (extent / size)  # columns scaled by the patch voxel size
        out[:, s, :3, :3] = linear
        out[:, s, :3, 3] = centers_ras - linear @ half
    return out


def extract_multiscale_patches(
    image: torch.Tensor | np.ndarray,
    image_affine: np.ndarray | torch.Tensor,
    centers_voxel: np.ndarray,
    scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
    hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample every candidate at every scale from one scan, in one resampling call.

    Args:
        image: the scan, (1, X, Y, Z) or (X, Y, Z), in HU (or already in [0, 1] when ``hu_window`` is None).
        image_affine: its voxel -> RAS affine.
        centers_voxel: (N, 3) fractional voxel indices of the candidate centres.
        scales_mm: physical size (x, y, z mm) of each scale, finest first.
        patch_size: the common grid all scales are resampled to.
        hu_window: HU range mapped to [0, 1] with clipping before sampling; outside the scan reads 0,
            which is air (-1000 HU) after the mapping.

    Returns:
        ``(patches, affines)``: float32 (N, S, *patch_size) trilinear samples and their (N, S, 4, 4)
        voxel -> RAS affines.

    Examples:
        >>> ct = torch.full((1, 64, 64, 40), -800.0)  # lung parenchyma, 0.7 x 0.7 x 1.25 mm voxels
        >>> affine = np.diag([0.7, 0.7, 1.25, 1.0])
        >>> patches, affines = extract_multiscale_patches(ct, affine, np.array([[32.0, 32.0, 20.0]]))
        >>> patches.shape, round(float(patches.mean()), 3)  # -800 HU -> (200 / 1400) on the [0, 1] scale
        ((1, 3, 20, 20, 12), 0.143)
    """
    scales, size = _check_scales(scales_mm, patch_size)
    vol = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    vol = vol.as_tensor() if isinstance(vol, MetaTensor) else vol
    if vol.ndim == 3:
        vol = vol[None]
    if vol.ndim != 4:
        raise ValueError(f"image must be (1, X, Y, Z) or (X, Y, Z), got shape {tuple(vol.shape)}")
    vol = vol[:1].float()
    if hu_window is not None:
        vol = ScaleIntensityRange(a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True)(
            vol
        )
    affine = _np(image_affine).astype(np.float64)
    centers = np.atleast_2d(np.asarray(centers_voxel, dtype=np.float64))
    n = len(centers)
    affines = patch_affines(affine, centers, scales, size)
    if n == 0:
        return np.zeros((0, len(scales), *size), np.float32), affines
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    dims = np.asarray(vol.shape[1:], dtype=np.float64)
    # patch axes are the scan axes, so each patch index maps to the scan index
    # centre + (index - half) * patch_voxel / scan_spacing; Resample wants indices centred on the volume
    steps = np.arange(size.max())[None, :] - ((size - 1) / 2.0)[:, None]  # (3, max size), per axis
    grid = np.empty((4, n, len(scales), *size), dtype=np.float32)
    for s, extent in enumerate(scales):
        ratio = extent / size / spacing
        for axis in range(3):
            offsets = steps[axis, : size[axis]] * ratio[axis]
            shape = [1, 1, 1]
            shape[axis] = int(size[axis])
            coord = (
                centers[:, axis][:, None, None, None] + offsets.reshape(shape)[None] - (dims[axis] - 1) / 2.0
            )
            grid[axis, :, s] = np.broadcast_to(coord, (n, *size))
    grid[3] = 1.0
    # all candidates and scales stacked along the first axis: one grid_sample call for the whole scan
    flat = torch.from_numpy(grid.reshape(4, n * len(scales) * int(size[0]), int(size[1]), int(size[2])))
    sampled = Resample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(vol, grid=flat)
    patches = _np(sampled).reshape(n, len(scales), *size).astype(np.float32)
    return patches, affines


class MultiScalePatch(Transform):
    """Cut the multi-scale patches of candidates out of a loaded CT scan.

    Args:
        scales_mm: physical size (x, y, z mm) of each scale, finest first.
        patch_size: the common grid all scales are resampled to.
        hu_window: HU range mapped to [0, 1] before sampling (None: the image is already scaled).

    ``__call__(img, centers_lps)`` takes the scan as a MetaTensor (1, X, Y, Z) in RAS (as
    ``io.load_image`` gives it) and candidate centres in LUNA16 world coordinates (LPS mm, (3,) or
    (N, 3)); it returns one MetaTensor (S, *patch_size) per centre, channel ``s`` = scale ``s``, whose
    affine is the finest scale's and whose ``meta["scale_affines"]`` holds all scales' affines.

    Raises:
        InputError: a centre lies outside the scan (named by its index and position).

    Examples:
        >>> from lungcad_transforms.io import load_image  # doctest: +SKIP
        >>> ct = load_image("LIDC-IDRI-0003/series")  # doctest: +SKIP
        >>> (patch,) = MultiScalePatch()(ct, [72.29, 76.90, -190.46])  # doctest: +SKIP
        >>> patch.shape  # doctest: +SKIP
        torch.Size([3, 20, 20, 12])
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
        patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
        hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
    ) -> None:
        _check_scales(scales_mm, patch_size)
        self.scales_mm = scales_mm
        self.patch_size = tuple(int(s) for s in patch_size)
        self.hu_window = hu_window

    def __call__(self, img: torch.Tensor, centers_lps: Sequence[float] | np.ndarray) -> list[MetaTensor]:
        from lungcad_transforms.coords import inside_volume, world_to_voxel

        if not isinstance(img, MetaTensor):
            raise TypeError("MultiScalePatch needs a MetaTensor (its affine places the candidates)")
        source = str(img.meta.get("filename_or_obj", "<image>"))
        voxels = world_to_voxel(centers_lps, img.affine)
        inside = inside_volume(voxels, img.shape[1:])
        if not inside.all():
            first = int(np.flatnonzero(~inside)[0])
            raise InputError(
                source, f"candidate {first} at LPS {np.atleast_2d(centers_lps)[first]} lies outside the scan"
            )
        patches, affines = extract_multiscale_patches(
            img, img.affine, voxels, self.scales_mm, self.patch_size, self.hu_window
        )
        out = []
        for patch, affine in zip(patches, affines, strict=True):
            meta = {"scale_affines": affine, "filename_or_obj": source, "space": "RAS"}
            out.append(MetaTensor(torch.from_numpy(patch), affine=torch.as_tensor(affine[0]), meta=meta))
        return out


class MultiScalePatchd(MapTransform):
    """Dictionary twin of :class:`MultiScalePatch`.

    Args:
        keys: the image key(s) to cut patches from.
        centers_key: key holding the candidate centres (LPS mm, (3,) or (N, 3)).
        output_key: key the list of patches is written to (one key: with several image keys the
            key name is suffixed ``_<image key>``).
        scales_mm, patch_size, hu_window: as :class:`MultiScalePatch`.
        allow_missing_keys: don't raise when a key is absent.

    Examples:
        >>> t = MultiScalePatchd("image", centers_key="centers")  # doctest: +SKIP
        >>> t({"image": ct, "centers": [[72.29, 76.90, -190.46]]})["patches"][0].shape  # doctest: +SKIP
        torch.Size([3, 20, 20, 12])
    """

    backend = MultiScalePatch.backend

    def __init__(
        self,
        keys: KeysCollection,
        centers_key: str = "centers",
        output_key: str = "patches",
        scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
        patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
        hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.centers_key = centers_key
        self.output_key = output_key
        self.extractor = MultiScalePatch(scales_mm, patch_size, hu_window)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        for key in keys:
            name = self.output_key if len(keys) == 1 else f"{self.output_key}_{key}"
            d[name] = self.extractor(d[key], d[self.centers_key])
        return d


class RandPhysicalShift(RandomizableTransform):
    """Shift a patch by a random offset given in millimetres (converted with the patch's own voxel size).

    The three scales of a candidate have different voxel sizes, so a shift in voxels would move them
    by different distances; a shift in mm keeps them centred on the same (jittered) point. MONAI's
    ``RandAffine`` draws translations in voxels, hence this transform. It resamples with MONAI's
    ``Resample`` on a shifted identity grid (cached per patch shape: a shift is all it does, and this
    is three times quicker than building an ``Affine`` per call), and updates the affine to match.

    Args:
        max_shift_mm: the offset along each axis is drawn uniformly from [-max, max] mm.
        prob: probability of shifting.
        padding_mode: how the patch is extended at its border (``"border"``: repeat the edge).

    Examples:
        >>> patch = MetaTensor(torch.rand(1, 16, 16, 16), affine=torch.diag(torch.tensor([1.25, 1.25, 1.25, 1.0])))
        >>> shift = RandPhysicalShift(max_shift_mm=2.0, prob=1.0)
        >>> shift.set_random_state(0)(patch).shape  # up to 2 mm = 1.6 voxels at 1.25 mm
        torch.Size([1, 16, 16, 16])
    """

    backend = Resample.backend

    def __init__(
        self, max_shift_mm: float | Sequence[float] = 2.0, prob: float = 0.5, padding_mode: str = "border"
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.max_shift_mm = np.broadcast_to(np.asarray(max_shift_mm, dtype=np.float64), (3,)).copy()
        self.resampler = Resample(mode="bilinear", padding_mode=padding_mode, dtype=torch.float32)
        self.shift_mm = np.zeros(3)
        self._grids: dict[tuple[int, ...], torch.Tensor] = {}

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self.shift_mm = self.R.uniform(-self.max_shift_mm, self.max_shift_mm)

    def shift(self, img: torch.Tensor) -> torch.Tensor:
        """Apply the current ``shift_mm`` to ``img`` (no new random draw)."""
        affine = _np(img.affine).astype(np.float64) if isinstance(img, MetaTensor) else np.eye(4)
        voxels = self.shift_mm / np.linalg.norm(affine[:3, :3], axis=0)
        shape = tuple(int(s) for s in img.shape[1:])
        if shape not in self._grids:
            self._grids[shape] = torch.as_tensor(create_grid(shape), dtype=torch.float32)
        grid = self._grids[shape].clone()
        grid[:3] += torch.as_tensor(voxels, dtype=torch.float32).view(3, 1, 1, 1)
        out = self.resampler(img, grid)
        if isinstance(out, MetaTensor):
            # output voxel i shows input voxel i + shift: the world position moves with it
            moved = np.eye(4)
            moved[:3, 3] = voxels
            out.affine = torch.as_tensor(affine @ moved)
        return out

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        return self.shift(img)


class RandPhysicalShiftd(RandomizableTransform, MapTransform):
    """Dictionary twin of :class:`RandPhysicalShift`: one offset in mm drawn per call, applied to every key.

    Args:
        keys: the patch keys (e.g. :data:`PATCH_KEYS`).
        max_shift_mm, prob, padding_mode: as :class:`RandPhysicalShift`.
        allow_missing_keys: don't raise when a key is absent.

    Examples:
        >>> t = RandPhysicalShiftd(keys=PATCH_KEYS, max_shift_mm=2.0, prob=1.0)
        >>> sample = {k: MetaTensor(torch.rand(1, 16, 16, 16), affine=torch.diag(torch.tensor([s, s, s, 1.0])))
        ...           for k, s in zip(PATCH_KEYS, (1.25, 1.875, 2.5))}
        >>> sorted(t(sample))
        ['patch_s1', 'patch_s2', 'patch_s3']
    """

    backend = RandPhysicalShift.backend

    def __init__(
        self,
        keys: KeysCollection,
        max_shift_mm: float | Sequence[float] = 2.0,
        prob: float = 0.5,
        padding_mode: str = "border",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.shifter = RandPhysicalShift(max_shift_mm, prob=1.0, padding_mode=padding_mode)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.shifter.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.shifter.randomize()
        for key in self.key_iterator(d):
            d[key] = self.shifter.shift(d[key])
        return d


MultiScalePatchD = MultiScalePatchDict = MultiScalePatchd
RandPhysicalShiftD = RandPhysicalShiftDict = RandPhysicalShiftd


# --------------------------------------------------------------------------------------------------
# inputs: candidate tables, scans, extra positives
# --------------------------------------------------------------------------------------------------
def read_candidates_lenient(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a candidates / results CSV, skipping malformed rows instead of failing on the first.

    For inference on a user's table (the segmentation bundle's ``candidates.csv`` with
    ``probability,diameter_mm`` columns, or a LUNA16 ``candidates.csv``): a row with the wrong number
    of fields, an empty ``seriesuid`` or a coordinate that is not a finite number is reported and
    skipped, the others are kept. Training uses the strict ``coords.read_candidates``.

    Args:
        path: the CSV; needs the columns ``seriesuid,coordX,coordY,coordZ``.

    Returns:
        ``(rows, problems)``: the good rows as ``coords.read_candidates`` returns them, each with its
        ``line`` number added; and one message per skipped row.

    Raises:
        InputError: the file is missing, empty, not text, or its header lacks a required column.

    Examples:
        >>> rows, problems = read_candidates_lenient("candidates.csv")  # doctest: +SKIP
        >>> problems  # doctest: +SKIP
        ['candidates.csv: line 7: coordY is 'abc', not a number (row skipped)']
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist" if not path.exists() else "is not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if row and any(f.strip() for f in row)]
    except UnicodeDecodeError as err:
        raise InputError(path, f"is not a text CSV file ({err.reason})") from err
    except csv.Error as err:
        raise InputError(path, f"is not a valid CSV file: {err}") from err
    if not lines:
        raise InputError(path, "is empty: expected a header line seriesuid,coordX,coordY,coordZ")
    header = [h.strip() for h in lines[0][1]]
    missing = [c for c in ("seriesuid", "coordX", "coordY", "coordZ") if c not in header]
    if missing:
        raise InputError(path, f"header {','.join(header)!r} lacks column(s) {', '.join(missing)}")
    numeric = {"coordX", "coordY", "coordZ", "probability", "diameter_mm"}
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for line, fields in lines[1:]:
        problem = None
        record: dict[str, Any] = {"line": line}
        if len(fields) != len(header):
            problem = f"expected {len(header)} fields, found {len(fields)}"
        else:
            for column, raw in zip(header, fields, strict=True):
                text = raw.strip()
                if column == "seriesuid":
                    if not text:
                        problem = "seriesuid is empty"
                        break
                    record[column] = text
                elif column in numeric or column == "class":
                    try:
                        value = float(text)
                    except ValueError:
                        value = math.nan
                    if not math.isfinite(value):
                        problem = f"{column} is {text!r}, not a finite number"
                        break
                    record[column] = int(value) if column == "class" else value
                else:
                    record[column] = text
        if problem is not None:
            problems.append(f"{path}: line {line}: {problem} (row skipped)")
        else:
            rows.append(record)
    return rows, problems


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
            from lungcad_transforms.io import find_images

            found = find_images(path)
            return [dict(entry) for entry in found]
        if path.is_file() and path.suffix == ".json":
            try:
                content = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise InputError(path, f"is not a valid JSON datalist: {err}") from err
            if isinstance(content, dict) and split is not None:
                if not isinstance(content.get(split), list):
                    raise InputError(path, f"datalist has no {split!r} list (keys: {', '.join(content)})")
                entries = content[split]
            elif isinstance(content, dict):
                entries = [e for value in content.values() if isinstance(value, list) for e in value]
            else:
                entries = content
            out = []
            for entry in entries:
                if not isinstance(entry, Mapping) or "image" not in entry:
                    continue
                item = dict(entry)
                image = Path(str(item["image"]))
                item["image"] = str(image if image.is_absolute() else (path.parent / image))
                out.append(item)
            if not out:
                raise InputError(path, "datalist holds no entries with an 'image' key")
            return [_with_seriesuid(e) for e in out]
        raise InputError(
            path, "scans must be a folder of images or a JSON datalist" if path.exists() else "does not exist"
        )
    return [_with_seriesuid(dict(e)) for e in scans]


def _with_seriesuid(entry: dict[str, Any]) -> dict[str, Any]:
    if not entry.get("seriesuid"):
        name = Path(str(entry["image"])).name
        for suffix in (".nii.gz", ".nii", ".mhd", ".mha", ".nrrd"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        entry["seriesuid"] = name
    return entry


def load_extra_positives(spec: Any) -> list[dict[str, Any]]:
    """The extra-positives hook: resolve the ``extra_positives`` config value into entries.

    The CT-GAN bundle (or any other generator of synthetic nodules) plugs in here. ``spec`` is one of:

    - ``None`` / ``""``: no extra positives;
    - a callable: called with no arguments, returns an iterable of entries;
    - a path to a JSON datalist (a list of entries, or a dict whose lists are entries), relative
      ``image`` / ``patches`` paths being relative to the JSON file;
    - a path to one ``.npz`` file of patches;
    - a list of entries.

    An entry is either precomputed patches, ``{"patches": "x.npz"}`` holding arrays ``patch_s1``,
    ``patch_s2``, ``patch_s3`` of shape (*patch_size) or (M, *patch_size) sampled at this bundle's
    scales with intensities already in [0, 1] (:func:`extract_multiscale_patches` makes them), or the
    same arrays inline; or a scan with a synthetic nodule and its centre, ``{"image": path,
    "seriesuid": ..., "coordX": ..., "coordY": ..., "coordZ": ...}`` (LPS mm), cut like any candidate.
    All extra positives get class 1 and are used for training only.

    Examples:
        >>> load_extra_positives(None)
        []
        >>> load_extra_positives(lambda: [{"patch_s1": np.zeros((16, 16, 16))}])[0].keys()
        dict_keys(['patch_s1'])
    """
    if spec is None or spec == "" or spec == []:
        return []
    if callable(spec):
        return [dict(e) for e in spec()]
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file():
            raise InputError(path, "extra_positives file does not exist")
        if path.suffix == ".npz":
            return [{"patches": str(path)}]
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(path, f"extra_positives is not a valid JSON datalist: {err}") from err
        entries = (
            [e for value in content.values() if isinstance(value, list) for e in value]
            if isinstance(content, dict)
            else content
        )
        out = []
        for entry in entries:
            item = dict(entry)
            for key in ("image", "patches"):
                if key in item and not Path(str(item[key])).is_absolute():
                    item[key] = str(path.parent / str(item[key]))
            out.append(item)
        return out
    return [dict(e) for e in spec]


# --------------------------------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------------------------------
class MultiScalePatchDataset(torch.utils.data.Dataset):
    """Candidates of many scans as multi-scale patches; each scan is read once (or never, when cached).

    Args:
        scans: folder, datalist JSON, or list of ``{"image", "seriesuid"}`` (see :func:`resolve_scans`).
        candidates: a LUNA16 candidates CSV (``seriesuid,coordX,coordY,coordZ[,class][,probability]...``)
            or a list of such dicts.
        scales_mm, patch_size, hu_window: patch geometry (see :func:`extract_multiscale_patches`).
        transform: MONAI transform applied to each item (augmentation, ``ConcatItemsd``).
        cache_dir: folder for per-scan patch caches (None: memory only).
        extra_positives: the extra-positives hook (see :func:`load_extra_positives`).
        require_labels: every candidate must have a ``class`` (training / evaluation).
        lenient: report and skip malformed rows of a CSV instead of raising (inference).
        ignore_unknown_series: drop rows of series that are not among ``scans`` without reporting them
            (one LUNA16 candidates file serves all splits); by default each is reported.

    Candidates whose series has no scan, or whose centre lies outside their scan, are reported
    (logged, and listed in ``skipped``) and left out; the others are kept.

    Items are dicts: ``patch_s1``, ``patch_s2``, ``patch_s3`` (MetaTensor (1, *patch_size) with the
    patch's RAS affine), ``label`` (float tensor (1,), -1 when unknown) and ``index`` (into ``records``).

    Examples:
        >>> ds = MultiScalePatchDataset("phantoms/", "phantoms/candidates.csv")  # doctest: +SKIP
        >>> item = ds[0]  # doctest: +SKIP
        >>> item["patch_s3"].shape, ds.records[item["index"]]["seriesuid"]  # doctest: +SKIP
        (torch.Size([1, 20, 20, 12]), '1.2.826.0.1.3680043.8.498.1')
    """

    def __init__(
        self,
        scans: str | os.PathLike | Sequence[Mapping[str, Any]],
        candidates: str | os.PathLike | Sequence[Mapping[str, Any]],
        scales_mm: Sequence[Sequence[float]] = DEFAULT_SCALES_MM,
        patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
        hu_window: tuple[float, float] | None = DEFAULT_HU_WINDOW,
        transform: Callable | None = None,
        cache_dir: str | os.PathLike | None = None,
        extra_positives: Any = None,
        require_labels: bool = True,
        lenient: bool = False,
        ignore_unknown_series: bool = False,
    ) -> None:
        self.scales_mm = [tuple(float(v) for v in s) for s in _check_scales(scales_mm, patch_size)[0]]
        self.patch_size = tuple(int(s) for s in patch_size)
        self.hu_window = None if hu_window is None else (float(hu_window[0]), float(hu_window[1]))
        self.transform = transform
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.skipped: list[dict[str, Any]] = []
        self.scans = resolve_scans(scans)
        self.scan_geometry: dict[str, dict[str, Any]] = {}
        rows = self._read_rows(candidates, require_labels, lenient)
        self.records: list[dict[str, Any]] = []
        chunks: list[np.ndarray] = []
        affine_chunks: list[np.ndarray] = []
        by_series: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_series.setdefault(str(row["seriesuid"]), []).append(row)
        known = {str(s["seriesuid"]): s for s in self.scans}
        for uid, uid_rows in by_series.items():
            if uid not in known and not ignore_unknown_series:
                for row in uid_rows:
                    self._skip(row, f"series {uid} has no scan among the {len(self.scans)} given")
        for scan in self.scans:
            uid = str(scan["seriesuid"])
            if uid not in by_series:
                continue
            patches, affines, kept = self._scan_patches(scan, by_series[uid])
            for row in kept:
                self.records.append({**row, "synthetic": False})
            chunks.append(patches)
            affine_chunks.append(affines)
        for patches, affines, rows_extra in self._extra_positive_patches(extra_positives):
            self.records.extend(rows_extra)
            chunks.append(patches)
            affine_chunks.append(affines)
        n_scales = len(self.scales_mm)
        self.patches = (
            np.concatenate(chunks) if chunks else np.zeros((0, n_scales, *self.patch_size), np.float16)
        )
        self.affines = np.concatenate(affine_chunks) if affine_chunks else np.zeros((0, n_scales, 4, 4))
        self.labels = np.array([int(r.get("class", -1)) for r in self.records], dtype=np.int64)
        if self.skipped:
            logger.warning("%d candidate(s) skipped (see the log lines above)", len(self.skipped))

    # -- reading -----------------------------------------------------------------------------------
    def _read_rows(self, candidates: Any, require_labels: bool, lenient: bool) -> list[dict[str, Any]]:
        from lungcad_transforms.coords import read_candidates

        if isinstance(candidates, (str, os.PathLike)):
            source = str(candidates)
            if lenient:
                rows, problems = read_candidates_lenient(candidates)
                for problem in problems:
                    logger.warning(problem)
                    self.skipped.append({"reason": problem, "source": source})
            else:
                rows = read_candidates(candidates)
                for i, row in enumerate(rows):
                    row.setdefault("line", i + 2)
        else:
            source = "<candidates>"
            rows = [dict(r) for r in candidates]
        out = []
        for i, row in enumerate(rows):
            row.setdefault("line", i + 2)
            if require_labels and "class" not in row:
                raise InputError(
                    source, f"line {row['line']}: no 'class' value; training needs labelled candidates"
                )
            if "class" in row and int(row["class"]) not in (0, 1):
                raise InputError(source, f"line {row['line']}: class is {row['class']}, expected 0 or 1")
            row["source"] = source
            out.append(row)
        return out

    def _skip(self, row: Mapping[str, Any], reason: str) -> None:
        message = (
            f"{row.get('source', '<candidates>')}: line {row.get('line', '?')}: {reason} (candidate skipped)"
        )
        logger.warning(message)
        self.skipped.append(
            {"reason": message, **{k: row.get(k) for k in ("seriesuid", "coordX", "coordY", "coordZ")}}
        )

    def _cache_path(self, scan: Mapping[str, Any], rows: list[dict[str, Any]]) -> Path | None:
        if self.cache_dir is None:
            return None
        source = scan["image"]
        try:
            if isinstance(source, (list, tuple)):  # a DICOM series given as its files
                files = [Path(str(f)) for f in source]
            elif Path(str(source)).is_dir():
                files = sorted(p for p in Path(str(source)).iterdir() if p.is_file())
            else:
                files = [Path(str(source))]
            # a changed, added or removed file changes the key, so a stale cache is never read
            stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        except OSError:
            return None
        key = json.dumps(
            {
                "version": _CACHE_VERSION,
                "image": stamp,
                "centres": [[round(float(r[c]), 6) for c in ("coordX", "coordY", "coordZ")] for r in rows],
                "scales": self.scales_mm,
                "size": self.patch_size,
                "window": self.hu_window,
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.cache_dir / f"{scan['seriesuid']}.{digest}.npz"

    def _scan_patches(
        self, scan: Mapping[str, Any], rows: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        from lungcad_transforms.coords import inside_volume, world_to_voxel

        cache = self._cache_path(scan, rows)
        if cache is not None and cache.is_file():
            try:
                with np.load(cache) as stored:
                    inside = stored["inside"]
                    patches, affines = stored["patches"], stored["affines"]
                    self.scan_geometry[str(scan["seriesuid"])] = {
                        "affine": stored["scan_affine"],
                        "shape": tuple(int(v) for v in stored["scan_shape"]),
                        "image": scan["image"],
                    }
                kept = [row for row, ok in zip(rows, inside, strict=True) if ok]
                for row, ok in zip(rows, inside, strict=True):
                    if not ok:
                        self._skip(row, f"centre lies outside scan {scan['image']}")
                return patches, affines, kept
            except (OSError, KeyError, ValueError) as err:
                logger.warning("patch cache %s unreadable (%s): reading the scan again", cache, err)
        from lungcad_transforms.io import load_image

        image = load_image(scan)
        affine = _np(image.affine).astype(np.float64)
        shape = tuple(int(s) for s in image.shape[1:])
        self.scan_geometry[str(scan["seriesuid"])] = {
            "affine": affine,
            "shape": shape,
            "image": scan["image"],
        }
        centres = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows], dtype=np.float64)
        voxels = world_to_voxel(centres, affine)
        inside = inside_volume(voxels, shape)
        for row, ok in zip(rows, inside, strict=True):
            if not ok:
                self._skip(row, f"centre lies outside scan {scan['image']} (voxel shape {shape})")
        patches, affines = extract_multiscale_patches(
            image, affine, voxels[inside], self.scales_mm, self.patch_size, self.hu_window
        )
        patches = patches.astype(np.float16)
        if cache is not None:
            with atomic_file(cache) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        patches=patches,
                        affines=affines,
                        inside=inside,
                        scan_affine=affine,
                        scan_shape=np.asarray(shape),
                    )
        return patches, affines, [row for row, ok in zip(rows, inside, strict=True) if ok]

    def _extra_positive_patches(
        self, spec: Any
    ) -> Iterable[tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]]:
        entries = load_extra_positives(spec)
        if not entries:
            return
        scan_entries = [e for e in entries if "image" in e and "patches" not in e and PATCH_KEYS[0] not in e]
        for entry in entries:
            if entry in scan_entries:
                continue
            arrays = self._patch_arrays(entry)
            n = arrays.shape[0]
            # precomputed patches carry no scan position: an identity-like affine at the scale's voxel size
            affines = np.tile(np.eye(4), (n, len(self.scales_mm), 1, 1))
            for s, extent in enumerate(self.scales_mm):
                affines[:, s, :3, :3] = np.diag(np.asarray(extent) / np.asarray(self.patch_size))
            rows = [
                {
                    "seriesuid": str(entry.get("seriesuid", "synthetic")),
                    "coordX": math.nan,
                    "coordY": math.nan,
                    "coordZ": math.nan,
                    "class": 1,
                    "synthetic": True,
                    "line": 0,
                    "source": str(entry.get("patches", "<extra_positives>")),
                }
                for _ in range(n)
            ]
            yield arrays.astype(np.float16), affines, rows
        for entry in scan_entries:
            entry = _with_seriesuid(dict(entry))
            row = {k: float(entry[k]) for k in ("coordX", "coordY", "coordZ")}
            row.update(seriesuid=str(entry["seriesuid"]), **{"class": 1}, line=0, source=str(entry["image"]))
            patches, affines, kept = self._scan_patches(entry, [row])
            yield patches, affines, [{**r, "synthetic": True} for r in kept]

    def _patch_arrays(self, entry: Mapping[str, Any]) -> np.ndarray:
        source = str(entry.get("patches", "<extra_positives>"))
        if "patches" in entry:
            try:
                with np.load(str(entry["patches"])) as stored:
                    arrays = [np.asarray(stored[k], dtype=np.float32) for k in PATCH_KEYS]
            except (OSError, KeyError, ValueError) as err:
                raise InputError(source, f"extra positive patches unreadable: {err}") from err
        else:
            try:
                arrays = [np.asarray(_np(entry[k]), dtype=np.float32) for k in PATCH_KEYS]
            except KeyError as err:
                raise InputError(source, f"extra positive entry lacks {err}") from err
        arrays = [a[None] if a.ndim == 3 else a for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].shape[1:] != self.patch_size:
            raise InputError(
                source,
                f"extra positive patches have shapes {sorted(shapes)}, expected (M, *{self.patch_size})",
            )
        if not all(np.isfinite(a).all() for a in arrays):
            raise InputError(source, "extra positive patches contain NaN or infinite values")
        return np.stack(arrays, axis=1)

    # -- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for s, key in enumerate(PATCH_KEYS[: len(self.scales_mm)]):
            item[key] = MetaTensor(
                torch.from_numpy(self.patches[index, s].astype(np.float32))[None],
                affine=torch.as_tensor(self.affines[index, s]),
            )
        item["label"] = torch.tensor([float(self.labels[index])], dtype=torch.float32)
        item["index"] = int(index)
        return self.transform(item) if self.transform is not None else item

    @property
    def seriesuids(self) -> list[str]:
        """Ids of the scans that were given (the FP-per-scan divisor of the FROC analysis)."""
        return [str(s["seriesuid"]) for s in self.scans]

    def class_counts(self) -> dict[int, int]:
        """Candidates per class (-1: unlabelled)."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def sample_weights(self) -> torch.Tensor:
        """Per-item weights that make both classes equally likely under a weighted random sampler.

        LUNA16 has about one nodule per 500 candidates; drawing each class with probability 1/2
        (``torch.utils.data.WeightedRandomSampler(ds.sample_weights(), n)``) balances the batches.
        """
        counts = self.class_counts()
        weights = np.array([1.0 / counts[int(label)] for label in self.labels], dtype=np.float64)
        return torch.as_tensor(weights)


def require_trained_model(path: str | os.PathLike) -> str:
    """Return ``path`` when trained weights are there; otherwise stop with how to get them.

    Raises:
        InputError: no file at ``path``; the message gives the training command.

    Examples:
        >>> require_trained_model("bundles/lung_nodule_ct_fp_reduction/models/model.pt")  # doctest: +SKIP
        'bundles/lung_nodule_ct_fp_reduction/models/model.pt'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(
            path,
            "no trained weights: train first with `python -m monai.bundle run training --config_file "
            "bundles/lung_nodule_ct_fp_reduction/configs/train.json`, or copy a trained model.pt here",
        )
    return path


# --------------------------------------------------------------------------------------------------
# engine add-ons: CPM as a metric, results CSV as a handler
# --------------------------------------------------------------------------------------------------
def _batch_scores(engine: Any) -> tuple[list[int], list[float]]:
    """Candidate indices and nodule probabilities of the current iteration (decollated or not)."""
    batch, output = engine.state.batch, engine.state.output

    def collect(items: Any, key: str) -> list[Any]:
        if isinstance(items, Mapping):
            return list(_np(items[key]).reshape(-1))
        return [
            (_np(item[key]).reshape(-1)[0] if isinstance(item[key], torch.Tensor) else item[key])
            for item in items
        ]

    indices = [int(i) for i in collect(batch, "index")]
    preds = [float(p) for p in collect(output, "pred")]
    if len(indices) != len(preds):
        raise RuntimeError(f"{len(indices)} candidate indices but {len(preds)} predictions in one iteration")
    return indices, preds


def _to_probability(values: Sequence[float], logits: bool) -> list[float]:
    if not logits:
        return list(values)
    return [1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)) for v in values]


def _gather(values: list[Any]) -> list[Any]:
    """Concatenate a per-process list over all processes (DDP); the list itself otherwise."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return values
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, values)
    return [v for part in parts for v in part]


def _result_rows(records: Sequence[Mapping[str, Any]], scores: Mapping[int, float]) -> list[dict[str, Any]]:
    rows = []
    for index in sorted(scores):
        record = records[index]
        if record.get("synthetic"):
            continue
        row = {k: record[k] for k in ("seriesuid", "coordX", "coordY", "coordZ")}
        row["probability"] = scores[index]
        if "diameter_mm" in record:
            row["diameter_mm"] = record["diameter_mm"]
        rows.append(row)
    return rows


try:  # ignite is a dependency of the bundles; the patch code above works without it
    from ignite.engine import Engine, Events
    from ignite.metrics import Metric
except ImportError:  # pragma: no cover
    Metric = object  # type: ignore[assignment,misc]


class CandidateCPM(Metric):  # type: ignore[misc,valid-type]
    """The LUNA16 CPM of a validation epoch, as an ignite metric usable as a MONAI key metric.

    Collects each candidate's nodule probability (read from ``engine.state.output[...]["pred"]``,
    matched to its row through ``engine.state.batch[...]["index"]``), and at the end of the epoch
    scores them with ``froc.froc_score`` against the nodule annotations: the mean sensitivity at
    1/8 .. 8 false positives per scan. Works with decollated or batched engine state and gathers
    across processes under DDP.

    Args:
        dataset: the :class:`MultiScalePatchDataset` the evaluator iterates (for rows and scan ids).
        annotations: LUNA16 ``annotations.csv`` path or rows (nodule centres and diameters).
        logits: predictions are logits (a sigmoid is applied), else probabilities.

    Examples:
        >>> cpm = CandidateCPM(val_dataset, "phantoms/annotations.csv")  # doctest: +SKIP
        >>> # MONAI: SupervisedEvaluator(..., key_val_metric={"val_cpm": cpm})  # doctest: +SKIP
    """

    def __init__(self, dataset: MultiScalePatchDataset, annotations: Any, logits: bool = True) -> None:
        self.dataset = dataset
        self.annotations = annotations
        self.logits = logits
        self._indices: list[int] = []
        self._scores: list[float] = []
        super().__init__(output_transform=lambda x: x)

    def reset(self) -> None:
        self._indices, self._scores = [], []

    def update(self, output: Any) -> None:  # the work happens in iteration_completed
        pass

    def iteration_completed(self, engine: Engine) -> None:
        indices, preds = _batch_scores(engine)
        self._indices.extend(indices)
        self._scores.extend(_to_probability(preds, self.logits))

    def compute(self) -> float:
        from lungcad_transforms.froc import froc_score

        indices, scores = _gather(self._indices), _gather(self._scores)
        rows = _result_rows(self.dataset.records, dict(zip(indices, scores, strict=True)))
        return float(froc_score(self.annotations, rows, self.dataset.seriesuids).cpm)


class CandidateScoresHandler:
    """Engine handler base: the nodule probability of every candidate a run scores, acted on when it ends.

    Records ``dataset index -> probability`` at every iteration; when the run completes, gathers the
    records of all DDP processes and calls :meth:`scores_complete` on rank 0 only (the other ranks return).
    Subclasses write or explain; they share this so that every per-candidate handler collects and gathers
    the same way.

    Args:
        logits: the engine's predictions are logits (a sigmoid is applied), else probabilities.
    """

    def __init__(self, logits: bool = True) -> None:
        self.logits = logits
        self.scores: dict[int, float] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._complete)

    def _reset(self, engine: Engine) -> None:
        self.scores = {}

    def _collect(self, engine: Engine) -> None:
        indices, preds = _batch_scores(engine)
        self.scores.update(zip(indices, _to_probability(preds, self.logits), strict=True))

    def _complete(self, engine: Engine) -> None:
        import torch.distributed as dist

        items = _gather(list(self.scores.items()))
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        self.scores_complete(dict(items))

    def scores_complete(self, scores: dict[int, float]) -> None:
        """Act on the scores of the whole run (rank 0)."""
        raise NotImplementedError


class CandidateResultsWriter(CandidateScoresHandler):
    """Engine handler: write the scored candidates as a LUNA16 results CSV, and the FROC report.

    At the end of a run it writes, under ``output_dir``: ``results.csv``
    (``seriesuid,coordX,coordY,coordZ,probability[,diameter_mm]``, readable by the official LUNA16
    evaluation script), ``seriesuids.csv`` (the scans scored), ``skipped.csv`` (candidates left out and
    why); and when ``annotations`` is given, ``froc.json`` (sensitivities, CPM, bootstrap bounds,
    per-candidate ROC-AUC), ``froc_curve.csv`` and ``froc.png`` via ``froc.save_froc_report``.

    Args:
        dataset: the :class:`MultiScalePatchDataset` the engine iterates.
        output_dir: where the files go.
        annotations: nodule annotations for the FROC analysis (None: results only).
        n_bootstrap: bootstrap draws for the confidence bounds.
        logits: predictions are logits (a sigmoid is applied), else probabilities.
        results_name: file name of the results CSV.

    Examples:
        >>> writer = CandidateResultsWriter(dataset, "eval/", annotations="annotations.csv")  # doctest: +SKIP
        >>> writer.attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: MultiScalePatchDataset,
        output_dir: str | os.PathLike,
        annotations: Any = None,
        n_bootstrap: int = 1000,
        logits: bool = True,
        results_name: str = "results.csv",
    ) -> None:
        super().__init__(logits)
        self.dataset = dataset
        self.output_dir = Path(output_dir)
        self.annotations = annotations
        self.n_bootstrap = int(n_bootstrap)
        self.results_name = results_name
        self.froc = None

    def scores_complete(self, scores: dict[int, float]) -> None:
        from lungcad_transforms.froc import froc_score, save_froc_report, write_results_csv

        rows = _result_rows(self.dataset.records, scores)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        results = write_results_csv(rows, self.output_dir / self.results_name)
        with atomic_file(self.output_dir / "seriesuids.csv") as tmp:
            tmp.write_text("".join(f"{uid}\n" for uid in self.dataset.seriesuids), encoding="utf-8")
        with atomic_file(self.output_dir / "skipped.csv") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["seriesuid", "coordX", "coordY", "coordZ", "reason"])
                for s in self.dataset.skipped:
                    writer.writerow(
                        [
                            s.get("seriesuid", ""),
                            s.get("coordX", ""),
                            s.get("coordY", ""),
                            s.get("coordZ", ""),
                            s["reason"],
                        ]
                    )
        logger.info("wrote %d scored candidate(s) to %s", len(rows), results)
        if self.annotations is not None:
            self.froc = froc_score(
                self.annotations, rows, self.dataset.seriesuids, n_bootstrap=self.n_bootstrap
            )
            paths = save_froc_report(self.froc, self.output_dir, title="FROC - false-positive reduction")
            logger.info("CPM %.4f (ROC-AUC %s); report in %s", self.froc.cpm, self.froc.auc, paths["json"])
