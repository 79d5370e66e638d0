"""Drawing synthetic nodules into a real scan: partial volume, the scan's resolution and noise, voxel labels.

For each nodule the supersampled occupancy (the partial volume of each voxel box, i.e. a contiguous
slice profile) is blurred in-plane by a Gaussian point-spread function of the scan's pixel size (FWHM
1.06 pixels, ``sigma = 0.45 px``: the sharpest kernels resolve about a pixel). The nodule then takes
over the tissue less dense than itself: ``out = bg + f * max(hu + noise - bg, 0)``, so a nodule against a
vessel or the chest wall merges with it and does not dim it, and ground glass leaves the vessels running
through it visible, as in real ground-glass opacities. ``noise`` is the scan's own noise: a block of the
high-pass residual of its homogeneous soft tissue, scaled to the noise SD measured by
:func:`~lungcad_transforms.apps.hybrid.backgrounds.scan_noise`, so the nodule carries the grain of
the scan's kernel and dose instead of looking smooth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from lungcad_transforms.apps.hybrid.nodule_models import NoduleModel

__all__ = ["PSF_SIGMA_PX", "NoiseSource", "insert_nodules"]

PSF_SIGMA_PX = 0.45


class NoiseSource:
    """Blocks of a scan's own noise: high-pass residual of its homogeneous soft tissue.

    Args:
        hu: the scan (HU).
        spacing: mm per voxel.
        noise_sd: the scan's noise SD (HU); blocks are scaled to it.
        rng: picks where blocks are taken from.
    """

    def __init__(self, hu: np.ndarray, spacing: Sequence[float], noise_sd: float, rng: np.random.Generator):
        sp = np.asarray(spacing, dtype=np.float64)
        self.sd = float(noise_sd)
        self.rng = rng
        work = hu.astype(np.float32)
        self.residual = work - ndimage.gaussian_filter(work, sigma=np.maximum(1.5 / sp, 0.5))
        local = np.sqrt(np.maximum(ndimage.uniform_filter(self.residual**2, (5, 5, 1)), 0.0))
        homogeneous = (work > -150) & (work < 150) & (local < 1.5 * max(self.sd, 1.0))
        self.homogeneous = ndimage.binary_erosion(homogeneous, iterations=2)
        self.sites = np.argwhere(self.homogeneous)

    def block(self, shape: Sequence[int]) -> np.ndarray:
        """A block of ``shape`` voxels of noise (zeros when the scan has no homogeneous soft tissue).

        Taken where at least 90 % of the block is homogeneous (the best of 20 tries); its other voxels
        (organ edges) are filled with values drawn from the homogeneous ones.
        """
        shape = tuple(int(s) for s in shape)
        if self.sd <= 0 or len(self.sites) == 0:
            return np.zeros(shape, np.float32)
        full = np.asarray(self.residual.shape)
        size = np.minimum(np.asarray(shape), full)
        best, best_ok = None, None
        for _ in range(20):
            centre = self.sites[self.rng.integers(len(self.sites))]
            lo = np.clip(centre - size // 2, 0, full - size)
            sl = tuple(slice(int(a), int(a + s)) for a, s in zip(lo, size, strict=True))
            ok = self.homogeneous[sl]
            if best_ok is None or ok.mean() > best_ok.mean():
                best, best_ok = self.residual[sl].copy(), ok
            if best_ok.mean() >= 0.9:
                break
        values = best[best_ok]
        best[~best_ok] = self.rng.choice(values, int((~best_ok).sum()))
        best = np.pad(best, [(0, int(a - b)) for a, b in zip(shape, size, strict=True)], mode="reflect")
        return (best * (self.sd / max(float(values.std()), 1e-6))).astype(np.float32)


def insert_nodules(
    hu: np.ndarray,
    lungs: np.ndarray,
    spacing: Sequence[float],
    nodules: Sequence[NoduleModel],
    noise: NoiseSource,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``nodules`` into a copy of ``hu``; return ``(hu, labels)``.

    Args:
        hu: the case's background (HU), not modified.
        lungs: its lung mask; labels are cut to it (a juxtapleural nodule's label ends at the pleura, as a
            reader's contour does).
        spacing: mm per voxel.
        nodules: centres in grid mm (voxel index x spacing).
        noise: the scan's noise.

    Returns:
        the new scan (float32 HU) and the label map (uint8: 0 background, n the n-th nodule; a voxel
        is labelled when at least half of it is nodule).
    """
    sp = np.asarray(spacing, dtype=np.float64)
    out = hu.astype(np.float32, copy=True)
    labels = np.zeros(hu.shape, np.uint8)
    sigma = np.array([PSF_SIGMA_PX, PSF_SIGMA_PX, 0.0])
    for index, model in enumerate(nodules, start=1):
        c = model.center / sp
        half = np.ceil(model.reach_mm / sp + 3 * sigma + 1).astype(int)
        lo = np.maximum(np.floor(c).astype(int) - half, 0)
        hi = np.minimum(np.floor(c).astype(int) + half + 2, np.asarray(hu.shape))
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        coords = tuple(np.arange(a, b) * s for a, b, s in zip(lo, hi, sp, strict=True))
        body, core = model.occupancy(coords, sp)
        inside = (body >= 0.5) & lungs[box]
        body_f = ndimage.gaussian_filter(body, sigma)
        bg = out[box]
        n = noise.block(bg.shape)
        bg = bg + body_f * np.maximum(model.hu + n - bg, 0.0)
        if model.core_hu is not None:
            bg = bg + ndimage.gaussian_filter(core, sigma) * np.maximum(model.core_hu + n - bg, 0.0)
        out[box] = bg
        sub = labels[box]
        sub[inside & (sub == 0)] = index
    return out, labels
