"""The patient of a phantom: :class:`Anatomy`, every structure in LPS world millimetres.

An anatomy is laid out once per patient, independent of any voxel grid, and rendered on as many grids as
needed: co-registered CT, PET and MR images of one patient share it. The class composes one mixin per
part of the body, each in its own module: the trunk (:mod:`.body`), the lungs with the central airways
and fissures (:mod:`.lungs`), the mediastinum (:mod:`.mediastinum`), the abdomen (:mod:`.abdomen`), the
vessel and airway trees (:mod:`.trees`) and the nodules (:mod:`.nodules`).

Scale:
    The macro anatomy (body, lungs, heart, ribs) scales to the field of view: the body fills most of the
    in-plane field of view and the chest fills the slab from the upper abdomen (bottom slices) to the
    lung apices (top slices), so a small test volume still looks like a chest. The anatomy is therefore
    stretched in z when the slab is long compared with its width (up to 3 times; a still longer slab
    shows the abdomen below the chest, a short one the middle of the chest). Nodules are true to size in
    millimetres (clipped to what fits in the lung), and vessels and airways taper to the resolution
    limit, so the local appearance at voxel level is like a real scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lungcad_transforms.apps.phantoms.abdomen import AbdomenMixin
from lungcad_transforms.apps.phantoms.body import BodyMixin
from lungcad_transforms.apps.phantoms.grid import Grid
from lungcad_transforms.apps.phantoms.lungs import LungsMixin
from lungcad_transforms.apps.phantoms.mediastinum import MediastinumMixin
from lungcad_transforms.apps.phantoms.nodules import NodulePlacementMixin, NoduleSpec
from lungcad_transforms.apps.phantoms.render import Rendered, render_anatomy
from lungcad_transforms.apps.phantoms.results import Nodule
from lungcad_transforms.apps.phantoms.shapes import Tube
from lungcad_transforms.apps.phantoms.trees import TreesMixin

__all__ = ["Anatomy"]


class Anatomy(BodyMixin, LungsMixin, MediastinumMixin, AbdomenMixin, TreesMixin, NodulePlacementMixin):
    """The patient of a phantom: every structure in LPS world millimetres, independent of any voxel grid.

    Built by :func:`~lungcad_transforms.apps.phantoms.draw.make_anatomy` (the phantom makers call it);
    rendering it on different grids gives co-registered CT, PET and MR images of one patient. Attributes
    of interest: ``nodules`` (list of :class:`~lungcad_transforms.apps.phantoms.results.Nodule`),
    ``box_lo``/``box_hi`` (the world box it fills), ``lungs`` ("both", "left", "right" or "none"),
    ``contrast`` (whether the CT is contrast-enhanced).

    The constructor lays out the body (and the chest, or an abdomen slab for ``lungs="none"``) from
    ``rng``; :meth:`grow_trees` and :meth:`place_nodules` add the vessel and airway trees and the
    nodules, and :meth:`render` rasterises the whole on a grid.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        box_lo: np.ndarray,
        box_hi: np.ndarray,
        lungs: str,
        contrast: bool,
        voxel_mm: Sequence[float],
    ) -> None:
        self.box_lo = np.asarray(box_lo, dtype=float)
        self.box_hi = np.asarray(box_hi, dtype=float)
        self.lungs = lungs
        self.contrast = bool(contrast)
        self.chest = lungs != "none"
        self.seed = 0
        self.nodules: list[Nodule] = []
        self._nodule_specs: list[NoduleSpec] = []
        self.vessels: list[Tube] = []
        self.airway_tree: list[Tube] = []
        self.fissures: list[tuple[str, np.ndarray, np.ndarray, tuple | None]] = []
        self._voxel = np.asarray(voxel_mm, dtype=float)
        self._min_voxel = float(min(self._voxel[0], self._voxel[1]))
        self._layout_body(rng)
        if self.chest:
            self._layout_chest(rng)
        else:
            self._layout_abdomen(rng, self.box_hi[2], self.box_hi[2] - self.box_lo[2])

    def _layout_chest(self, rng: np.random.Generator) -> None:
        # the order of the parts is the order of their random draws: changing it changes every phantom
        self._layout_lung_shape(rng)
        self._layout_mediastinum(rng)
        self._layout_airways()
        self._layout_fissures(rng)
        # the abdomen below the diaphragm, at the chest's scale
        self._layout_abdomen(rng, self._t_to_z(self.t_dome["right"] + 0.04), self.z_len)

    def render(self, grid: Grid) -> Rendered:
        """Rasterise the anatomy on a grid: tissue map, partial-volume fractions and ground truth."""
        return render_anatomy(self, grid)
