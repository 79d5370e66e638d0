"""Synthetic nodules for real chest CT: kinds, sizes and attenuations drawn from LIDC figures, and their shapes.

A :class:`NoduleModel` is a nodule in the millimetres of a case grid (voxel index times spacing: centre, radius, lobulated ellipsoidal surface,
optional spicules, solid core) with the attenuation it is rendered with. :func:`draw_nodule_model`
draws one of a kind; :meth:`NoduleModel.occupancy` gives the fraction of each voxel of a grid that it
fills (supersampled, i.e. the partial volume of the voxel box), for the outer body and for the solid core.

Where the numbers come from (cited where they are used below):

- diameters: the empirical distribution of the 1186 nodule diameters of the LUNA16 ``annotations.csv``
  (LIDC-IDRI nodules >= 3 mm accepted by at least 3 of 4 readers; Setio et al., Med Image Anal 42, 2017),
  as its deciles (3.3, 4.4, 4.9, 5.3, 5.9, 6.4, 7.3, 8.7, 11.1, 15.5, 32.3 mm: median 6.4 mm, mean 8.3 mm,
  42 % under 6 mm, 24 % of 10 mm or more), interpolated log-linearly and cut to 3-30 mm;
- attenuation: solid tissue about 0-80 HU (soft tissue, unenhanced nodules); pure ground glass about
  -750 to -450 HU (pure GGNs of 1 cm or less are mostly at or below -600 HU mean CT value: Ikeda et al.,
  PMC3388248); the solid part of a part-solid nodule above -160 HU (the conventional high threshold for a
  solid component: Lee et al., PLoS One 13:e0205490, 2018).
- the kind weights are this project's choice, not a published frequency: LIDC readers rate most nodules
  solid; the rarer kinds are over-represented so that a training set holds enough of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["HYBRID_NODULE_KINDS", "KIND_WEIGHTS", "NoduleModel", "draw_diameter_mm", "draw_nodule_model"]


HYBRID_NODULE_KINDS: tuple[str, ...] = (
    "solid",
    "part_solid",
    "ground_glass",
    "juxtapleural",
    "juxtavascular",
    "spiculated",
)

# project choice (see the module docstring): solid-textured kinds dominate as in LIDC
KIND_WEIGHTS: dict[str, float] = {
    "solid": 0.30,
    "part_solid": 0.12,
    "ground_glass": 0.12,
    "juxtapleural": 0.18,
    "juxtavascular": 0.18,
    "spiculated": 0.10,
}

# deciles (0 %, 10 %, ..., 100 %) of the LUNA16 annotations.csv diameters in mm (module docstring)
_DIAMETER_DECILES = np.array([3.25, 4.40, 4.90, 5.31, 5.90, 6.43, 7.30, 8.72, 11.07, 15.48, 32.27])

# smallest diameters at which the kind is visible as such (a solid core needs a ground-glass rim
# around it, spicules need a core to radiate from)
_MIN_DIAMETER = {"part_solid": 6.0, "ground_glass": 5.0, "spiculated": 8.0}

_SUPERSAMPLE = 3  # sub-voxel samples per axis for the partial-volume fraction


def draw_diameter_mm(rng: np.random.Generator, kind: str, lo: float = 3.0, hi: float = 30.0) -> float:
    """A diameter (mm) from the LUNA16 distribution, truncated to ``[lo, hi]`` and the kind's own minimum.

    Examples:
        >>> d = draw_diameter_mm(np.random.default_rng(0), "solid")
        >>> 3.0 <= d <= 30.0
        True
    """
    lo = min(max(float(lo), _MIN_DIAMETER.get(kind, 0.0)), float(hi))
    for _ in range(1000):
        d = float(np.exp(np.interp(rng.uniform(0, 10), np.arange(11), np.log(_DIAMETER_DECILES))))
        if lo <= d <= hi:
            return d
    return float(rng.uniform(lo, hi))  # a range far out in the tail: uniform in it


@dataclass
class NoduleModel:
    """One synthetic nodule in grid millimetres (voxel index x spacing) and the attenuation it is drawn with.

    Attributes:
        kind: one of :data:`HYBRID_NODULE_KINDS`.
        center: grid mm (voxel index x spacing of the case it is inserted into).
        radius: nominal radius (mm); the volume is about that of the sphere (lobulation averages out).
        axes: (3, 3) rotation whose rows are the ellipsoid axes; ``scales`` their relative lengths.
        lobes: (k, 3) unit vectors of the lobulation bumps; ``lobe_amp`` their amplitude (fraction of radius).
        hu: mean attenuation of the body (solid kinds: the whole nodule; part-solid / ground glass: the
            ground-glass part).
        core_hu, core_frac, core_offset: the solid core of a part-solid nodule (radius fraction, offset in mm).
        spicules: (n, 3) unit directions, ``spicule_len`` (n,) lengths beyond the surface, ``spicule_r``
            (n,) base radii, all mm.
    """

    kind: str
    center: np.ndarray
    radius: float
    axes: np.ndarray
    scales: np.ndarray
    lobes: np.ndarray
    lobe_amp: float
    hu: float
    core_hu: float | None = None
    core_frac: float = 0.0
    core_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    spicules: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    spicule_len: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spicule_r: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def diameter_mm(self) -> float:
        return 2.0 * self.radius

    @property
    def reach_mm(self) -> float:
        """Radius of a sphere around the centre that holds the whole nodule, spicules included."""
        spikes = float(self.spicule_len.max()) if len(self.spicule_len) else 0.0
        return self.radius * (1.0 + self.lobe_amp) * float(self.scales.max()) + spikes

    def _body_signed(
        self, pts: np.ndarray, radius_scale: float = 1.0, offset: np.ndarray | None = None
    ) -> np.ndarray:
        rel = pts - (self.center if offset is None else self.center + offset)
        local = rel @ self.axes.T / self.scales  # ellipsoid -> sphere
        dist = np.linalg.norm(local, axis=-1)
        unit = local / np.maximum(dist, 1e-6)[..., None]
        bumps = ((unit @ self.lobes.T) ** 2 - 1.0 / 3.0).mean(axis=-1) if len(self.lobes) else 0.0
        return dist - radius_scale * self.radius * (1.0 + self.lobe_amp * bumps)

    def _spicule_signed(self, pts: np.ndarray) -> np.ndarray:
        best = np.full(pts.shape[:-1], np.inf)
        for u, length, r0 in zip(self.spicules, self.spicule_len, self.spicule_r, strict=True):
            a = self.center + 0.7 * self.radius * u
            seg = (self.radius * 0.3 + length) * u
            t = np.clip(((pts - a) @ seg) / float(seg @ seg), 0.0, 1.0)
            closest = a + t[..., None] * seg
            radius = r0 * (1.0 - t) + 0.25 * t  # tapers to a 0.25 mm tip
            best = np.minimum(best, np.linalg.norm(pts - closest, axis=-1) - radius)
        return best

    def occupancy(
        self, coords: tuple[np.ndarray, np.ndarray, np.ndarray], spacing: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fraction of each voxel filled by the nodule, and by its solid core (zeros without one).

        Args:
            coords: grid mm of the voxel centres along each axis (1-D arrays).
            spacing: voxel size (mm); each voxel is sampled ``3 x 3 x 3`` times within its box, so the
                fraction is the partial volume of the box (the slice profile of a contiguous reconstruction).

        Returns:
            ``(body, core)``, float32 arrays of shape ``(len(x), len(y), len(z))`` in ``[0, 1]``.
        """
        s = _SUPERSAMPLE
        offsets = (np.arange(s) + 0.5) / s - 0.5
        body = np.zeros([len(c) for c in coords], np.float32)
        core = np.zeros_like(body)
        for ox in offsets:
            for oy in offsets:
                for oz in offsets:
                    x = coords[0][:, None, None] + ox * spacing[0]
                    y = coords[1][None, :, None] + oy * spacing[1]
                    z = coords[2][None, None, :] + oz * spacing[2]
                    pts = np.stack(np.broadcast_arrays(x, y, z), axis=-1)
                    signed = self._body_signed(pts)
                    if len(self.spicules):
                        signed = np.minimum(signed, self._spicule_signed(pts))
                    body += signed <= 0
                    if self.core_hu is not None:
                        core += self._body_signed(pts, self.core_frac, self.core_offset) <= 0
        n = float(s**3)
        return body / n, core / n


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))[None]


def draw_nodule_model(
    rng: np.random.Generator, kind: str, center: np.ndarray, diameter_mm: float
) -> NoduleModel:
    """Draw the shape and attenuation of a nodule of ``kind`` and diameter ``diameter_mm`` at ``center`` (grid mm).

    Raises:
        ValueError: an unknown kind.

    Examples:
        >>> m = draw_nodule_model(np.random.default_rng(1), "part_solid", np.zeros(3), 12.0)
        >>> m.kind, m.diameter_mm, m.core_hu is not None and m.core_hu > -160
        ('part_solid', 12.0, True)
    """
    if kind not in HYBRID_NODULE_KINDS:
        raise ValueError(f"unknown nodule kind {kind!r}; known: {HYBRID_NODULE_KINDS}")
    radius = 0.5 * float(diameter_mm)
    # mildly elongated (3-D axis ratios of solid nodules seldom below 0.7), unit mean
    scales = rng.uniform(0.8, 1.0, 3)
    scales /= np.cbrt(scales.prod())
    lobes = rng.standard_normal((3, 3))
    lobes /= np.linalg.norm(lobes, axis=1, keepdims=True)
    model = NoduleModel(
        kind=kind,
        center=np.asarray(center, dtype=np.float64),
        radius=radius,
        axes=_rotation(rng),
        scales=scales,
        lobes=lobes,
        lobe_amp=float(rng.uniform(0.0, 0.25)),
        hu=float(rng.uniform(0.0, 80.0)),
    )
    if kind == "ground_glass":
        model.hu = float(rng.uniform(-750.0, -450.0))
        model.lobe_amp = float(rng.uniform(0.0, 0.1))
    elif kind == "part_solid":
        model.hu = float(rng.uniform(-700.0, -450.0))
        model.core_hu = float(rng.uniform(-100.0, 60.0))
        model.core_frac = float(rng.uniform(0.3, 0.6))
        model.core_offset = rng.normal(0.0, 0.15 * radius, 3)
    elif kind == "spiculated":
        n = int(rng.integers(8, 17))
        dirs = rng.standard_normal((n, 3))
        model.spicules = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        model.spicule_len = rng.uniform(0.6, 1.5, n) * radius
        model.spicule_r = np.maximum(rng.uniform(0.15, 0.3, n) * radius, 0.5)
        model.lobe_amp = float(rng.uniform(0.1, 0.3))
    return model
