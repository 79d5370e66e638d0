"""LungMask: the classic threshold-and-components lung mask as a MONAI transform."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cc3d
import numpy as np
from monai.config import DtypeLike, NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import Transform
from monai.utils import TransformBackends

from lungcad_transforms.errors import InputError
from lungcad_transforms.transforms.io.functional import check_ct, source_name
from lungcad_transforms.transforms.lung.enclosure import add_enclosed
from lungcad_transforms.transforms.lung.functional import (
    _bounding_box,
    _ellipsoid_semi_axes,
    _fill_holes_per_slice,
    _inside_air,
    _like,
    _spatial_array,
    dilate_ellipsoid,
)

__all__ = ["NoLungWarning", "LungMask"]

_WALL_MARGIN_MM = 8.0  # chest wall kept around the lungs' box for the enclosure test


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
       front of and behind it; a diaphragm dome cut across by the slice);
    5. ``fill_enclosed``: dense masses the lung encloses in 3-D are added: tumours against the chest wall
       or at the hilum, consolidated segments (:mod:`~lungcad_transforms.transforms.lung.enclosure`). On
       a 4 mm grid, a non-lung cell is enclosed when along at least ``enclosed_min_axes`` of the 13 axes of
       a 3x3x3 neighbourhood the nearest obstacles on its two sides are the same lung, or a lung and the
       chest wall, at most ``enclosed_max_mm`` apart; its voxels above ``threshold`` and at most
       ``enclosed_max_hu`` join the mask. The heart, the mediastinum and hila, the liver and stomach under
       the diaphragm and a basal pleural effusion are open on some side (to the mediastinum, the other
       lung or the abdomen) and stay out; so does a mass that sits on the diaphragm;
    6. ``dilation_mm`` > 0: the mask is dilated by an ellipsoid of that radius in millimetres (from the
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
            not a 3-D single-channel image, holds NaN or infinite values, declares a modality other than
            CT, has no value below -500 (cannot be Hounsfield units), or has an affine without spacing.
            An unknown modality (a LUNA16 ``.mhd``: ``MET_MOD_UNKNOWN``) is decided by the values
            (:func:`~lungcad_transforms.transforms.io.functional.check_ct`).

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
            The default, 1000 mm^2 (a 36 mm disc), keeps the domes of the diaphragm out; larger masses are
            step 5's.
        dilation_mm: radius of the ellipsoidal dilation in mm; 0 disables it. The default, 10 mm, takes in
            the base of a juxtapleural nodule of up to about 2 cm (that of the benchmark's 14 mm one needs
            9 mm), at the price of some chest wall and mediastinum in the mask.
        spacing: voxel spacing (mm) of the spatial axes for inputs without an affine; ``None``: 1 mm.
        dtype: dtype of the mask, ``np.uint8`` or ``bool``.
        fill_enclosed: add the dense masses the lung encloses (step 5).
        enclosed_max_mm: longest chord through an enclosed region between its obstacles (a bound on the
            masses taken in: the largest tumour plus some chest wall).
        enclosed_min_axes: how many of the 13 axes must enclose a region (1..13).
        enclosed_max_hu: the densest voxel added (bone and contrast-filled heart chambers stay out).

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
        max_hole_mm2: float | None = 1000.0,
        dilation_mm: float = 10.0,
        spacing: Sequence[float] | None = None,
        dtype: DtypeLike = np.uint8,
        fill_enclosed: bool = True,
        enclosed_max_mm: float = 100.0,
        enclosed_min_axes: int = 10,
        enclosed_max_hu: float = 200.0,
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
        if enclosed_max_mm <= 0:
            raise ValueError(f"enclosed_max_mm must be > 0, got {enclosed_max_mm}")
        if not 1 <= enclosed_min_axes <= 13:
            raise ValueError(f"enclosed_min_axes must be in 1..13, got {enclosed_min_axes}")
        if enclosed_max_hu <= threshold:
            raise ValueError(f"enclosed_max_hu ({enclosed_max_hu}) must be above threshold ({threshold})")
        self.fill_enclosed = bool(fill_enclosed)
        self.enclosed_max_mm = float(enclosed_max_mm)
        self.enclosed_min_axes = int(enclosed_min_axes)
        self.enclosed_max_hu = float(enclosed_max_hu)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Return the lung mask of ``img`` (see the class docstring)."""
        name = source_name(img)
        volume, has_channel = _spatial_array(img, name)
        vmin = check_ct(img, name)
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
            spacing = affine_to_spacing(affine, r=3, suppress_zeros=False)
            if not (spacing > 0).all():
                raise InputError(name, f"missing or zero voxel spacing in the affine: {spacing.tolist()}")
            cranio_caudal = np.abs(columns[2] / spacing)
            return tuple(float(s) for s in spacing), int(np.argmax(cranio_caudal))
        return (self.spacing or (1.0, 1.0, 1.0)), 2

    def _mask_view(
        self, hu: np.ndarray, spacing: tuple[float, float, float], vmin: float, out: np.ndarray
    ) -> bool:
        """Write the lung mask of ``hu`` (slice, row, column) into ``out`` (same view order); False if none."""
        padding_hu = self.outside_threshold if vmin <= self.outside_threshold else None
        inside, (row0, col0), body_area, inside_area = _inside_air(
            hu, self.threshold, padding_hu, self.outside_air_max_hu
        )
        slices = np.flatnonzero(inside_area)
        if not slices.size:
            return False
        projection = inside[slices[0] : slices[-1] + 1].any(axis=0)
        rows, cols = np.flatnonzero(projection.any(axis=1)), np.flatnonzero(projection.any(axis=0))
        in_box = (
            slice(slices[0], slices[-1] + 1),
            slice(rows[0], rows[-1] + 1),
            slice(cols[0], cols[-1] + 1),
        )
        lungs = self._select_lungs(np.ascontiguousarray(inside[in_box]), body_area[in_box[0]])
        del inside
        if lungs is None:
            return False
        box = (
            in_box[0],
            slice(row0 + rows[0], row0 + rows[-1] + 1),
            slice(col0 + cols[0], col0 + cols[-1] + 1),
        )

        # shrink to the lungs' own box, then add room for the dilation and a 1-voxel frame for hole filling
        semi_axes = _ellipsoid_semi_axes(self.dilation_mm, spacing)
        sub = _bounding_box(lungs)
        lo = [b.start + s.start for b, s in zip(box, sub, strict=True)]
        hi = [b.start + s.stop for b, s in zip(box, sub, strict=True)]
        margin = [r + 1 for r in semi_axes]
        wall = [0, 0, 0]
        if self.fill_enclosed:  # in-plane room for the chest wall around a mass at the lungs' edge
            wall[1:] = [int(np.ceil(_WALL_MARGIN_MM / s)) for s in spacing[1:]]
            margin = [max(m, w + 1) for m, w in zip(margin, wall, strict=True)]
        work = np.zeros(tuple(h - low + 2 * m for low, h, m in zip(lo, hi, margin, strict=True)), dtype=bool)
        inner = tuple(slice(m, m + h - low) for low, h, m in zip(lo, hi, margin, strict=True))
        work[inner] = lungs[sub]
        del lungs

        max_hole_px = None
        if self.fill_holes:
            if self.max_hole_mm2 is not None:
                max_hole_px = self.max_hole_mm2 / (spacing[1] * spacing[2])
            _fill_holes_per_slice(work, max_hole_px, first=margin[0], stop=work.shape[0] - margin[0])
        if self.fill_enclosed:
            # on the lungs' box with the chest-wall room only (a view: the dilation's room is not needed)
            room = tuple(
                slice(m - w, m + h - low + w) for low, h, m, w in zip(lo, hi, margin, wall, strict=True)
            )
            changed = add_enclosed(
                work[room],
                hu,
                [low - w for low, w in zip(lo, wall, strict=True)],
                spacing,
                (self.threshold, self.enclosed_max_hu),
                self.enclosed_max_mm,
                self.enclosed_min_axes,
            )
            if changed is not None and self.fill_holes:  # air bronchograms, vessels in what was added
                first = room[0].start
                _fill_holes_per_slice(work, max_hole_px, first=first + changed[0], stop=first + changed[1])
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
