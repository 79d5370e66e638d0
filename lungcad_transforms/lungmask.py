"""CT lung masking: the preprocessing of the Grad-CAM visualisation study, as MONAI transforms.

The classic threshold pipeline (threshold at -350 HU, connected components, remove the air around the body,
keep the large air pockets, fill the structures inside the lungs, dilate) made robust for real scans and fast:

- FOV padding (-2048, -3024) is outside the body, never lung;
- "outside" means connected to the in-plane border *within a slice*, so lungs that touch the first or last
  slice of a slab are kept, and a trachea that reaches the open air through the mouth in a whole-body scan
  does not drag the lungs out with it; lung cut by the edge of a field of view smaller than the body
  (lung density, not air, at the border) stays lung;
- an air pocket counts as lung only if it is large relative to the body cross-section; both lungs are kept
  when they are separate components; stomach and bowel gas (small, or below the lungs) are dropped;
- the dilation is given in millimetres and is an exact ellipsoid in voxels, so it means the same on a
  0.7 x 0.7 x 2.5 mm scan as on a 1 mm isotropic one;
- everything expensive runs on the bounding box of the lungs; labelling uses cc3d with uint32 labels.

The trachea and main bronchi are kept when they connect to the lungs in the scan (they do in any scan that
covers the carina; the benchmark ground truth includes them). A trachea segment that is a separate component
(a thin slab above the carina) is too small to pass the size rules and is dropped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence

import cc3d
import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

from lungcad_transforms.errors import InputError

__all__ = ["LungMask", "LungMaskd", "LungMaskD", "LungMaskDict", "NoLungWarning", "dilate_ellipsoid"]

# metadata keys under which readers keep the DICOM Modality; a non-empty value other than "CT" is rejected
_MODALITY_KEYS = ("modality", "Modality", "0008|0060")
# a CT in Hounsfield units has air at about -1000 HU; without any value below this it cannot be one
_HU_AIR_CEILING = -500.0


class NoLungWarning(UserWarning):
    """Issued when a CT holds no air pocket that qualifies as lung; the mask returned is empty."""


class LungMask(Transform):
    """Mask the lungs of a CT given in Hounsfield units.

    Steps (each a parameter; the threshold is the study's, the other defaults are explained below):

    1. voxels at or below ``threshold`` HU are air (lung parenchyma is about -850 HU);
    2. in every slice, air connected (4-connectivity) to FOV padding (values at or below
       ``outside_threshold``) or to the image border is outside the body and removed; except air whose
       pixels on the border average above ``outside_air_max_hu``: that is lung cut by a field of view
       smaller than the body (outside air is -1000 HU, lung about -850);
    3. the remaining air is labelled in 3D (6-connectivity). The largest component whose widest slice
       covers at least ``min_area_fraction`` of the body cross-section there is a lung (smaller sections
       are gas); it is kept, and so is any other component whose volume is at least ``keep_fraction`` of
       it and whose centre lies within its slice range (the other lung when they are separate; bowel gas
       below the lungs and small pockets are dropped). No lung: empty mask and a :class:`NoLungWarning`;
    4. ``fill_holes``: per slice, regions enclosed by lung (vessels, nodules, airway walls) are filled,
       except enclosed regions larger than ``max_hole_mm2`` (the mediastinum, should both lungs meet in
       front of and behind it);
    5. ``dilation_mm`` > 0: the mask is dilated by an ellipsoid of that radius in millimetres (from the
       voxel spacing), so that nodules attached to the pleura lie inside the mask.

    The slice axis is the spatial axis whose direction is closest to the patient's cranio-caudal axis
    according to the affine (the last axis after ``Orientation("RAS")`` or for any axial acquisition);
    for inputs without an affine it is the last axis.

    Input: a CT in HU of shape (1, X, Y, Z) or (X, Y, Z), as a ``MetaTensor`` (spacing and direction from its
    affine), a torch tensor or a numpy array (spacing from ``spacing``, else 1 mm). A single slice is
    (X, Y, 1). The input is never modified.

    Output: the mask, of the input's type and shape (channel dim included if the input has one), dtype
    ``dtype`` (uint8 with values 0/1 by default, so it can be written to NIfTI as is; ``bool`` is allowed);
    a ``MetaTensor`` input gives a ``MetaTensor`` with the same affine and metadata.

    Raises:
        InputError: naming the file (``filename_or_obj`` of the metadata) and the problem when the input is
            not a 3-D single-channel image, holds NaN or infinite values, is labelled with a modality other
            than CT, has no value below -500 (cannot be Hounsfield units), or has an affine without spacing.

    Args:
        threshold: HU at or below which a voxel is air.
        outside_threshold: HU at or below which a voxel is padding outside the scanner's field of view.
        outside_air_max_hu: air touching the image border is outside unless its border pixels (8 or more)
            average above this HU; ``None``: all air touching the border is outside (the classic rule).
        keep_fraction: a further air pocket is kept when its volume is at least this fraction of the largest
            lung component's volume (and it is centred within that component's slice range).
        min_area_fraction: the largest lung component must cover, in its widest slice, at least this
            fraction of the body (everything not outside) in that slice; larger air pockets that do not are
            gas, and a scan without any such pocket has no lungs.
        fill_holes: fill the regions enclosed by lung in each slice.
        max_hole_mm2: enclosed regions larger than this (mm^2, in the slice) are not filled; ``None``: no limit.
        dilation_mm: radius of the ellipsoidal dilation in mm; 0 disables it. The default, 10 mm, takes in
            the base of a juxtapleural nodule of up to about 2 cm (that of the benchmark's 14 mm one needs
            9 mm), at the price of some chest wall and mediastinum in the mask.
        spacing: voxel spacing (mm) of the spatial axes for inputs without an affine; ``None``: 1 mm.
        dtype: dtype of the mask, ``np.uint8`` or ``bool``.

    Examples:
        >>> from monai.transforms import Compose, LoadImage, Orientation, ScaleIntensityRange
        >>> load = Compose([LoadImage(reader="ITKReader", ensure_channel_first=True), Orientation("RAS")])  # doctest: +SKIP
        >>> ct = load("LIDC-IDRI-0003/series")  # doctest: +SKIP
        >>> mask = LungMask(dilation_mm=10.0)(ct)  # doctest: +SKIP
        >>> mask.shape == ct.shape, mask.dtype  # doctest: +SKIP
        (True, torch.uint8)
        >>> # the study's display range: lung window -1200..600 HU -> 0..255
        >>> display = ScaleIntensityRange(a_min=-1200, a_max=600, b_min=0, b_max=255, clip=True)
        >>> import numpy as np
        >>> chest = np.full((64, 48, 8), -1000, np.int16)
        >>> chest[4:60, 4:44] = 40  # body
        >>> chest[10:28, 10:38] = -850  # right lung
        >>> chest[36:54, 10:38] = -850  # left lung
        >>> int(LungMask(dilation_mm=0)(chest).sum()) == 2 * 18 * 28 * 8
        True
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        threshold: float = -350.0,
        outside_threshold: float = -1500.0,
        outside_air_max_hu: float | None = -950.0,
        keep_fraction: float = 0.2,
        min_area_fraction: float = 0.05,
        fill_holes: bool = True,
        max_hole_mm2: float | None = 5000.0,
        dilation_mm: float = 10.0,
        spacing: Sequence[float] | None = None,
        dtype: DtypeLike = np.uint8,
    ) -> None:
        if outside_threshold >= threshold:
            raise ValueError(f"outside_threshold ({outside_threshold}) must be below threshold ({threshold})")
        if not 0.0 < keep_fraction <= 1.0:
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        if not 0.0 <= min_area_fraction < 1.0:
            raise ValueError(f"min_area_fraction must be in [0, 1), got {min_area_fraction}")
        if dilation_mm < 0:
            raise ValueError(f"dilation_mm must be >= 0, got {dilation_mm}")
        if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
            raise ValueError(f"spacing must be 3 positive values, got {spacing}")
        if np.dtype(dtype) not in (np.dtype(np.uint8), np.dtype(bool)):
            raise ValueError(f"dtype must be uint8 or bool, got {dtype}")
        self.threshold = float(threshold)
        self.outside_threshold = float(outside_threshold)
        self.outside_air_max_hu = None if outside_air_max_hu is None else float(outside_air_max_hu)
        self.keep_fraction = float(keep_fraction)
        self.min_area_fraction = float(min_area_fraction)
        self.fill_holes = fill_holes
        self.max_hole_mm2 = max_hole_mm2
        self.dilation_mm = float(dilation_mm)
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.dtype = np.dtype(dtype)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Return the lung mask of ``img`` (see the class docstring)."""
        name = _source_name(img)
        volume, has_channel = _spatial_array(img, name)
        _check_modality(img, name)
        vmin = _check_values(volume, name)
        spacing, slice_axis = self._geometry(img, name)
        in_plane_shape = [volume.shape[a] for a in range(3) if a != slice_axis]
        if min(in_plane_shape) < 2:
            raise InputError(
                name,
                f"slices of {in_plane_shape[0]}x{in_plane_shape[1]} pixels (shape {volume.shape}): a 2-D image "
                "with a channel dim? A single CT slice is given as (X, Y, 1)",
            )

        # work in a (slice, row, column) view, in-plane axes in memory order; the mask is built C-contiguous
        # in that order and handed back as a view in the input's axis order (no transposing copy)
        in_plane = sorted((a for a in range(3) if a != slice_axis), key=lambda a: -abs(volume.strides[a]))
        order = [slice_axis, *in_plane]
        view = volume.transpose(order)
        mask_view = np.zeros(view.shape, dtype=self.dtype)
        found = self._mask_view(view, tuple(spacing[a] for a in order), vmin, mask_view)
        mask = mask_view.transpose(np.argsort(order))
        if not found:
            warnings.warn(
                f"{name}: no lungs found (no air pocket inside the body large enough); mask is empty",
                NoLungWarning,
                stacklevel=2,
            )
        if has_channel:
            mask = mask[None]
        return _like(mask, img)

    def _geometry(self, img: NdarrayOrTensor, name: str) -> tuple[tuple[float, float, float], int]:
        """Spacing (mm) of the 3 spatial axes and the index of the slice axis."""
        if isinstance(img, MetaTensor):
            affine = np.asarray(img.affine, dtype=np.float64)
            if affine.shape != (4, 4) or not np.isfinite(affine).all():
                raise InputError(name, f"affine is not a finite 4x4 matrix (shape {tuple(affine.shape)})")
            columns = affine[:3, :3]
            spacing = np.sqrt((columns**2).sum(axis=0))
            if not (spacing > 0).all():
                raise InputError(name, f"missing or zero voxel spacing in the affine: {spacing.tolist()}")
            cranio_caudal = np.abs(columns[2] / spacing)
            return tuple(float(s) for s in spacing), int(np.argmax(cranio_caudal))
        return (self.spacing or (1.0, 1.0, 1.0)), 2

    def _mask_view(
        self, hu: np.ndarray, spacing: tuple[float, float, float], vmin: float, out: np.ndarray
    ) -> bool:
        """Write the lung mask of ``hu`` (slice, row, column) into ``out`` (same view order); False if none."""
        air = _at_or_below(hu, self.threshold)
        padding = _at_or_below(hu, self.outside_threshold) if vmin <= self.outside_threshold else None
        # air now holds the air inside the body only
        body_area, inside_area = _remove_outside_air(air, padding, hu, self.outside_air_max_hu)
        del padding
        inside = air
        slices = np.flatnonzero(inside_area)
        if not slices.size:
            return False
        projection = inside[slices[0] : slices[-1] + 1].any(axis=0)
        rows, cols = np.flatnonzero(projection.any(axis=1)), np.flatnonzero(projection.any(axis=0))
        box = (
            slice(slices[0], slices[-1] + 1),
            slice(rows[0], rows[-1] + 1),
            slice(cols[0], cols[-1] + 1),
        )
        lungs = self._select_lungs(np.ascontiguousarray(inside[box]), body_area[box[0]])
        del inside, air
        if lungs is None:
            return False

        # shrink to the lungs' own box, then add room for the dilation and a 1-voxel frame for hole filling
        semi_axes = _ellipsoid_semi_axes(self.dilation_mm, spacing)
        sub = _bounding_box(lungs)
        lo = [b.start + s.start for b, s in zip(box, sub, strict=True)]
        hi = [b.start + s.stop for b, s in zip(box, sub, strict=True)]
        margin = [r + 1 for r in semi_axes]
        work = np.zeros(tuple(h - low + 2 * m for low, h, m in zip(lo, hi, margin, strict=True)), dtype=bool)
        inner = tuple(slice(m, m + h - low) for low, h, m in zip(lo, hi, margin, strict=True))
        work[inner] = lungs[sub]
        del lungs

        if self.fill_holes:
            max_hole_px = None
            if self.max_hole_mm2 is not None:
                max_hole_px = self.max_hole_mm2 / (spacing[1] * spacing[2])
            _fill_holes_per_slice(work, max_hole_px, first=margin[0], stop=work.shape[0] - margin[0])
        if self.dilation_mm > 0:
            work = dilate_ellipsoid(work, spacing, self.dilation_mm)

        # paste the part of the work box that lies inside the volume
        dst, src = [], []
        for low, h, m, n in zip(lo, hi, margin, out.shape, strict=True):
            start, stop = low - m, h + m
            dst.append(slice(max(start, 0), min(stop, n)))
            src.append(slice(max(start, 0) - start, min(stop, n) - start))
        out[tuple(dst)] = work[tuple(src)]
        return True

    def _select_lungs(self, inside: np.ndarray, body_area: np.ndarray) -> np.ndarray | None:
        """Keep the air components of ``inside`` (slice, row, column) that are lungs; None when there are none."""
        labels, n = cc3d.connected_components(inside, connectivity=6, return_N=True, out_dtype=np.uint32)
        if n == 0:
            return None
        # sizes from every 2nd voxel along each axis only rank the components and stop the search (8x less
        # work than counting all; only components of lung size matter, and those are estimated to ~1 %)
        sizes = np.bincount(labels[::2, ::2, ::2].reshape(-1), minlength=n + 1)
        sizes[0] = 0
        reference = None  # (estimated size, first slice, last slice) of the largest lung component
        keep_mask = None
        # components are examined from the largest down; only a handful can be large enough to matter
        for label in np.argsort(sizes)[::-1][:8]:
            size = int(sizes[label])
            if size == 0 or (reference is not None and size < self.keep_fraction * reference[0]):
                break
            component = labels == label
            # per-slice counts in a loop: count_nonzero with an axis argument goes through a slow int sum
            area = np.array([np.count_nonzero(plane) for plane in component])
            present = np.flatnonzero(area)
            if reference is None:
                if (area / np.maximum(body_area, 1)).max() < self.min_area_fraction:
                    continue  # a gas pocket, not a lung
                reference = (size, int(present[0]), int(present[-1]))
            elif not reference[1] <= (area * np.arange(area.size)).sum() / area.sum() <= reference[2]:
                continue  # centred below (or above) the lungs: bowel gas
            keep_mask = component if keep_mask is None else np.logical_or(keep_mask, component, out=keep_mask)
        return keep_mask


class LungMaskd(MapTransform):
    """Dictionary version of :class:`LungMask`.

    Args:
        keys: keys of the CT images to mask.
        new_key_prefix: when given, the mask of ``key`` is stored under ``new_key_prefix + key`` and the CT is
            kept; by default the CT is replaced by its mask.
        allow_missing_keys: do not raise if a key is missing.
        other arguments: see :class:`LungMask`.

    Examples:
        >>> import numpy as np
        >>> chest = np.full((1, 64, 48, 8), -1000, np.int16)
        >>> chest[0, 4:60, 4:44] = 40
        >>> chest[0, 10:28, 10:38] = -850
        >>> chest[0, 36:54, 10:38] = -850
        >>> out = LungMaskd(keys="image", new_key_prefix="lung_", dilation_mm=0)({"image": chest})
        >>> sorted(out), out["lung_image"].shape
        (['image', 'lung_image'], (1, 64, 48, 8))
    """

    backend = LungMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = -350.0,
        outside_threshold: float = -1500.0,
        outside_air_max_hu: float | None = -950.0,
        keep_fraction: float = 0.2,
        min_area_fraction: float = 0.05,
        fill_holes: bool = True,
        max_hole_mm2: float | None = 5000.0,
        dilation_mm: float = 10.0,
        spacing: Sequence[float] | None = None,
        dtype: DtypeLike = np.uint8,
        new_key_prefix: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.masker = LungMask(
            threshold=threshold,
            outside_threshold=outside_threshold,
            outside_air_max_hu=outside_air_max_hu,
            keep_fraction=keep_fraction,
            min_area_fraction=min_area_fraction,
            fill_holes=fill_holes,
            max_hole_mm2=max_hole_mm2,
            dilation_mm=dilation_mm,
            spacing=spacing,
            dtype=dtype,
        )
        self.new_key_prefix = new_key_prefix

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            new_key = key if self.new_key_prefix is None else f"{self.new_key_prefix}{key}"
            d[new_key] = self.masker(d[key])
        return d


LungMaskD = LungMaskDict = LungMaskd


# ---------------------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------------------
def _source_name(img: NdarrayOrTensor) -> str:
    if isinstance(img, MetaTensor):
        source = img.meta.get("filename_or_obj")
        if isinstance(source, (list, tuple)):  # collated metadata
            source = source[0] if source else None
        if source:
            return str(source)
    return f"<{type(img).__name__} input>"


def _spatial_array(img: NdarrayOrTensor, name: str) -> tuple[np.ndarray, bool]:
    """The 3-D spatial numpy array of ``img`` (a view, never a copy on CPU) and whether it had a channel dim."""
    if not isinstance(img, (np.ndarray, torch.Tensor)):
        raise InputError(name, f"expected a numpy array or torch tensor, got {type(img).__name__}")
    # not monai's convert_data_type: it makes numpy arrays C-contiguous, a full transposing copy of a
    # (X, Y, Z) view of a (Z, Y, X) volume (what ITK gives) that costs more than the whole masking
    if isinstance(img, torch.Tensor):
        tensor = img.detach().cpu()
        array = (
            tensor.float() if tensor.dtype == torch.bfloat16 else tensor
        ).numpy()  # numpy has no bfloat16
    else:
        array = img
    if isinstance(img, MetaTensor):
        spatial = img.meta.get("spatial_shape")
        if spatial is not None and len(np.atleast_1d(np.asarray(spatial))) == 2:
            raise InputError(
                name,
                f"is a 2-D image (spatial shape {tuple(np.asarray(spatial).tolist())}); "
                "a CT volume is 3-D (a single slice is X x Y x 1)",
            )
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise InputError(
                name, f"has {array.shape[0]} channels (shape {array.shape}); expected one CT channel"
            )
        array, has_channel = array[0], True
    elif array.ndim == 3:
        has_channel = False
    else:
        raise InputError(
            name,
            f"is {array.ndim}-D (shape {array.shape}); expected a 3-D CT volume (1, X, Y, Z) or (X, Y, Z)",
        )
    if array.size == 0:
        raise InputError(name, f"is empty (shape {array.shape})")
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise InputError(name, f"has dtype {array.dtype}; a CT holds integer or floating-point HU values")
    return array, has_channel


def _like(mask: np.ndarray, img: NdarrayOrTensor) -> NdarrayOrTensor:
    """``mask`` as the container type of ``img`` (MetaTensor with ``img``'s metadata, tensor, or array).

    Shares memory and keeps the memory layout: monai's convert_to_dst_type would make a C-contiguous copy.
    """
    if isinstance(img, np.ndarray):
        return mask
    tensor = torch.from_numpy(mask).to(img.device)
    if isinstance(img, MetaTensor):
        out = MetaTensor(tensor)
        out.copy_meta_from(img)
        return out
    return tensor


def _check_modality(img: NdarrayOrTensor, name: str) -> None:
    if not isinstance(img, MetaTensor):
        return
    for key in _MODALITY_KEYS:
        value = img.meta.get(key)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None and str(value).strip() and str(value).strip().upper() != "CT":
            raise InputError(
                name, f"modality is {str(value).strip()!r}, not CT; lung masking needs a CT in HU"
            )


def _check_values(volume: np.ndarray, name: str) -> float:
    """Reject NaN/inf and intensities that cannot be HU; return the minimum."""
    vmin = volume.min()
    if np.issubdtype(volume.dtype, np.floating):
        vmax = volume.max()  # min and max propagate NaN: two passes instead of an isfinite mask
        if np.isnan(vmin) or np.isnan(vmax):
            raise InputError(name, "contains NaN values")
        if not (np.isfinite(vmin) and np.isfinite(vmax)):
            raise InputError(name, "contains infinite values")
    if vmin > _HU_AIR_CEILING:
        raise InputError(
            name,
            f"has no value below {_HU_AIR_CEILING:g} (minimum {float(vmin):g}): not a CT in "
            "Hounsfield units (air is about -1000 HU)",
        )
    return float(vmin)


# ---------------------------------------------------------------------------------------------------------
# the steps
# ---------------------------------------------------------------------------------------------------------
def _at_or_below(view: np.ndarray, level: float) -> np.ndarray:
    """``view <= level`` as a C-contiguous boolean array, whatever the memory layout of ``view``.

    When the slice axis is not the outermost in memory (a C-ordered (X, Y, Z) volume), comparing straight
    into a C-ordered result reads the input with a large stride; comparing blocks that are contiguous in
    memory and transposing the small boolean blocks is ~5x faster.
    """
    out = np.empty(view.shape, dtype=bool)
    outer = int(np.argmax([abs(s) for s in view.strides]))
    if outer == 0 or view.flags.c_contiguous:
        return np.less_equal(view, level, out=out)
    step = max(1, (1 << 22) // (view.size // view.shape[outer]))  # blocks of ~4 M voxels
    for start in range(0, view.shape[outer], step):
        block = (slice(None),) * outer + (slice(start, start + step),)
        out[block] = np.less_equal(view[block], level)
    return out


def _remove_outside_air(
    air: np.ndarray, padding: np.ndarray | None, hu: np.ndarray, outside_air_max_hu: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """In place: keep in ``air`` (slice, row, column) only the air inside the body. Returns the body (not
    outside) area and the inside-air area of each slice, in pixels.

    Outside is decided slice by slice, on purpose: in 3D, air touching the first or last slice would be
    "outside" (wrong for slabs), and the airways open to the outside air through the mouth in a scan that
    includes the head. An air component is outside when it holds FOV padding, or when it touches the image
    border, unless (``outside_air_max_hu`` not None) the pixels where it touches the border average above
    that value: lung parenchyma (about -850 HU) cut by the edge of a field of view smaller than the body,
    where outside air is -1000 HU.
    """
    n_slices, n_rows, n_cols = air.shape
    body_area = np.zeros(n_slices, dtype=np.int64)
    inside_area = np.zeros(n_slices, dtype=np.int64)
    # outside the in-plane box of all non-air (+1 pixel) there is only air connected to the border: label
    # only inside that box, whose rim then stands for the border
    tissue_anywhere = ~np.logical_and.reduce(air, axis=0)
    if not tissue_anywhere.any():
        air[...] = False
        return body_area, inside_area
    rows, cols = np.flatnonzero(tissue_anywhere.any(axis=1)), np.flatnonzero(tissue_anywhere.any(axis=0))
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, n_rows)
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, n_cols)
    air[:, :r0] = False
    air[:, r1:] = False
    air[:, :, :c0] = False
    air[:, :, c1:] = False
    for k in range(n_slices):
        a = air[k, r0:r1, c0:c1]
        labels, n = cc3d.connected_components(a, connectivity=4, return_N=True, out_dtype=np.uint32)
        tissue = a.size - np.count_nonzero(a)
        if n == 0:
            body_area[k] = tissue
            continue
        outside = np.zeros(n + 1, dtype=bool)
        edge = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
        if outside_air_max_hu is None:
            outside[edge] = True
        else:
            h = hu[k, r0:r1, c0:c1]
            edge_hu = np.concatenate((h[0], h[-1], h[:, 0], h[:, -1])).astype(np.float64)
            touches = np.bincount(edge, minlength=n + 1)
            hu_sum = np.bincount(edge, weights=edge_hu, minlength=n + 1)
            # a few border pixels give no reliable mean: those components stay outside, as classically
            lung_at_edge = (touches >= 8) & (hu_sum > outside_air_max_hu * touches)
            outside[(touches > 0) & ~lung_at_edge] = True
        if padding is not None:
            outside[labels[padding[k, r0:r1, c0:c1]]] = True
        outside[0] = False
        outside_labels = np.flatnonzero(outside)
        if outside_labels.size == n:
            a[...] = False
        elif outside_labels.size <= 4:  # usually 1-3: comparisons are cheaper than a table lookup
            for label in outside_labels:
                np.logical_and(a, labels != label, out=a)
        else:
            outside[0] = True
            np.logical_not(outside[labels], out=a)
        inside_area[k] = np.count_nonzero(a)
        body_area[k] = tissue + inside_area[k]
    return body_area, inside_area


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty 3-D mask, from one projection along axis 0 plus per-slice tests."""
    slices = np.flatnonzero([plane.any() for plane in mask])
    projection = mask[slices[0] : slices[-1] + 1].any(axis=0)
    rows, cols = np.flatnonzero(projection.any(axis=1)), np.flatnonzero(projection.any(axis=0))
    return (
        slice(int(slices[0]), int(slices[-1]) + 1),
        slice(int(rows[0]), int(rows[-1]) + 1),
        slice(int(cols[0]), int(cols[-1]) + 1),
    )


def _fill_holes_per_slice(work: np.ndarray, max_hole_px: float | None, first: int, stop: int) -> None:
    """In place: fill, in each slice of ``work`` from ``first`` to ``stop``, the background regions
    (4-connected) not connected to the slice border, up to ``max_hole_px`` pixels each.

    ``work`` must have an empty frame around every slice, so the exterior is the component at (0, 0).
    cc3d labelling per slice is ~15x faster than scipy's binary_fill_holes, which dilates to convergence.
    """
    for k in range(first, stop):
        lung = work[k]
        labels, n = cc3d.connected_components(~lung, connectivity=4, return_N=True, out_dtype=np.uint32)
        if n <= 1:
            continue
        exterior = labels[0, 0]
        filled = labels != exterior
        if max_hole_px is None or np.count_nonzero(filled) - np.count_nonzero(lung) <= max_hole_px:
            np.logical_or(lung, filled, out=lung)  # no hole can be too large: skip the per-hole sizes
        else:
            fillable = np.bincount(labels.reshape(-1), minlength=n + 1) <= max_hole_px
            fillable[0] = False
            fillable[exterior] = False
            np.logical_or(lung, fillable[labels], out=lung)


# ---------------------------------------------------------------------------------------------------------
# dilation by an ellipsoid given in mm
# ---------------------------------------------------------------------------------------------------------
def _ellipsoid_semi_axes(radius_mm: float, spacing: Sequence[float]) -> tuple[int, int, int]:
    """Semi-axes in voxels of the digital ellipsoid of radius ``radius_mm`` (0 where spacing > radius)."""
    return tuple(int(math.floor(radius_mm / s + 1e-9)) for s in spacing)  # type: ignore[return-value]


def _extent(radius2: float, spacing: float) -> int:
    """Largest integer offset ``o`` with ``(o * spacing)**2 <= radius2``."""
    return int(math.floor(math.sqrt(max(radius2, 0.0)) / spacing + 1e-9))


def _or_shifted(dst: np.ndarray, src: np.ndarray, shift: int, axis: int) -> None:
    """``dst |= src`` moved by ``shift`` elements along ``axis`` (0 or 1); what leaves the array is dropped."""
    if shift == 0:
        np.bitwise_or(dst, src, out=dst)
        return
    n = src.shape[axis]
    if abs(shift) >= n:
        return
    lead = (slice(None),) * axis
    if shift > 0:
        dst[lead + (slice(shift, None),)] |= src[lead + (slice(0, n - shift),)]
    else:
        dst[lead + (slice(0, n + shift),)] |= src[lead + (slice(-shift, None),)]


def _or_shifted_bits(dst: np.ndarray, src: np.ndarray, shift: int) -> None:
    """``dst |= src`` with the pixels packed along the last axis (``np.packbits(bitorder="little")``: pixel x is
    bit x % 8 of byte x // 8) moved by ``shift`` pixels; what leaves the array is dropped."""
    n = src.shape[-1]
    whole, bits = divmod(abs(shift), 8)
    if whole >= n:
        return
    if shift > 0:
        if bits == 0:
            dst[..., whole:] |= src[..., : n - whole]
        else:
            dst[..., whole:] |= src[..., : n - whole] << bits
            dst[..., whole + 1 :] |= src[..., : n - whole - 1] >> (8 - bits)
    else:
        if bits == 0:
            dst[..., : n - whole] |= src[..., whole:]
        else:
            dst[..., : n - whole] |= src[..., whole:] >> bits
            dst[..., : n - whole - 1] |= src[..., whole + 1 :] << (8 - bits)


def dilate_ellipsoid(mask: np.ndarray, spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """Dilate a 3-D boolean mask by the digital ellipsoid ``{o : sum((o_i * spacing_i)**2) <= radius_mm**2}``.

    Exact (the same result as ``scipy.ndimage.binary_dilation`` with that ellipsoid as structuring element),
    but ~100x faster: the ellipsoid is a union of x-segments, so the dilation is an OR of shifted copies of a
    few x-dilated masks, done on the mask packed 8 voxels per byte. Work grows with the number of (y, z)
    offsets in the ellipsoid, not with its voxel count. Voxels beyond the array are not produced.

    Args:
        mask: boolean array (any 3 axes; ``spacing`` in the same order), e.g. (Z, Y, X).
        spacing: voxel size along each axis in mm.
        radius_mm: ellipsoid radius in mm.

    Returns:
        the dilated mask (a new boolean array of the same shape).

    Examples:
        >>> import numpy as np
        >>> seed = np.zeros((9, 21, 21), bool)
        >>> seed[4, 10, 10] = True
        >>> grown = dilate_ellipsoid(seed, spacing=(2.5, 0.7, 0.7), radius_mm=5.0)
        >>> int(grown[4, 10].sum()), int(grown[:, 10, 10].sum())  # 5 mm = 7 voxels in-plane, 2 slices
        (15, 5)
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3-D, got shape {mask.shape}")
    s0, s1, s2 = (float(s) for s in spacing)
    r2 = float(radius_mm) ** 2
    if radius_mm <= 0 or not mask.any():
        return mask.copy()
    packed = np.packbits(np.ascontiguousarray(mask), axis=-1, bitorder="little")
    # x_dilated[w]: dilated along the last axis by [-w, w]
    x_dilated = [packed]
    for w in range(1, _extent(r2, s2) + 1):
        grown = x_dilated[-1].copy()
        _or_shifted_bits(grown, packed, w)
        _or_shifted_bits(grown, packed, -w)
        x_dilated.append(grown)
    # level i = |offset| along axis 0: the ellipse cut at that offset, a union of shifted x-segments. Levels
    # shrink with i, so the union over all offsets is built from the outermost level inwards, growing the
    # accumulated result by one voxel along axis 0 per level.
    result = None
    for i in range(_extent(r2, s0), -1, -1):
        level_r2 = r2 - (i * s0) ** 2
        level = x_dilated[_extent(level_r2, s2)].copy()
        for j in range(1, _extent(level_r2, s1) + 1):
            segment = x_dilated[_extent(level_r2 - (j * s1) ** 2, s2)]
            _or_shifted(level, segment, j, axis=1)
            _or_shifted(level, segment, -j, axis=1)
        if result is None:
            result = level
        else:
            _or_shifted(level, result, 1, axis=0)
            _or_shifted(level, result, -1, axis=0)
            np.bitwise_or(level, result, out=level)
            result = level
    return np.unpackbits(result, axis=-1, count=mask.shape[-1], bitorder="little").view(bool)
