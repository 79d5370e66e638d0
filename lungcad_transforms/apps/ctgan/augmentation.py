"""GAN positives as augmentation: inject CT-GAN nodules at random lung locations of a scan."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_numpy

from lungcad_transforms.apps.ctgan.editor import NoduleEditor
from lungcad_transforms.data.coords import voxel_to_world
from lungcad_transforms.errors import InputError

__all__ = ["RandInjectNoduled", "RandInjectNoduleD", "RandInjectNoduleDict"]


class RandInjectNoduled(RandomizableTransform, MapTransform):
    """With probability ``prob``, inject one GAN nodule at a random lung location of the CT under ``keys``.

    The location (lung voxel whose cube fits the scan) and the diameter (uniform in ``diameter_mm``) are
    drawn once per call and shared by the keys; the LUNA16 centre and diameter are appended to
    ``data[positives_key]`` as a candidate row of class 1, ready for the FP-reduction bundle's
    ``extra_positives``. Called again on its own output it adds one more nodule, clear of those already
    listed under ``positives_key`` and of the nodules under ``avoid_key``.

    Args:
        keys: the CT image keys (RAS ``MetaTensor`` from ``load_image``).
        editor: a :class:`NoduleEditor` (its trained injector is used).
        prob: probability of an injection.
        diameter_mm: (min, max) nodule diameter.
        positives_key: where the injected nodules are listed.
        max_tries: lung voxels tried before giving up (the data is then returned unchanged).
        margin_mm: draw only voxels at least this deep inside the lung mask (the editor's mask is dilated by
            10 mm so that juxtapleural nodules are inside: about 12 mm keeps the centre in the parenchyma).
        avoid_key: where the data lists nodules to keep clear of (rows with ``coordX, coordY, coordZ`` LPS mm
            and ``diameter_mm``), e.g. the scan's annotated nodules; None: none.
        clearance_mm: the new nodule's in-painted box keeps this distance from every avoided or injected nodule.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection,
        editor: NoduleEditor,
        prob: float = 0.5,
        diameter_mm: Sequence[float] = (4.0, 12.0),
        positives_key: str = "injected_nodules",
        max_tries: int = 20,
        margin_mm: float = 0.0,
        avoid_key: str | None = None,
        clearance_mm: float = 4.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.editor = editor
        self.diameter_mm = (float(diameter_mm[0]), float(diameter_mm[1]))
        self.positives_key = positives_key
        self.max_tries = int(max_tries)
        self.margin_mm = float(margin_mm)
        self.avoid_key = avoid_key
        self.clearance_mm = float(clearance_mm)

    def _lung_voxels(self, image: Any) -> np.ndarray:
        lungs = self.editor.lung_mask(image)
        if self.margin_mm <= 0:
            return np.argwhere(lungs)
        from scipy import ndimage

        spacing = np.sqrt((convert_to_numpy(image.affine, dtype=np.float64)[:3, :3] ** 2).sum(0))
        return np.argwhere(ndimage.distance_transform_edt(lungs, sampling=spacing) >= self.margin_mm)

    def _clear(self, data: Mapping[Hashable, Any], at: np.ndarray, diameter: float) -> bool:
        from lungcad_transforms.apps.ctgan.cubes import MASK_SIZE

        others = [
            *data.get(self.positives_key, []),
            *(data.get(self.avoid_key, []) if self.avoid_key else []),
        ]
        for row in others:
            centre = np.array([float(row["coordX"]), float(row["coordY"]), float(row["coordZ"])])
            # the in-painted box (half-diagonal of MASK_SIZE) must not reach the other nodule's surface
            reach = (
                MASK_SIZE * np.sqrt(3) / 2 + float(row.get("diameter_mm") or diameter) / 2 + self.clearance_mm
            )
            if np.linalg.norm(at - centre) < reach:
                return False
        return True

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        first = d[self.first_key(d)]
        lungs = self._lung_voxels(first)
        if len(lungs) == 0:
            return d
        diameter = float(self.R.uniform(*self.diameter_mm))
        for _ in range(self.max_tries):
            at = voxel_to_world(lungs[self.R.randint(len(lungs))], first.affine.numpy())[0]
            if not self._clear(d, at, diameter):
                continue
            try:
                edited = {k: self.editor.inject(d[k], at, diameter) for k in self.key_iterator(d)}
            except InputError:
                continue  # a cube crossing the border: draw another voxel
            d.update(edited)
            row = {"seriesuid": str(first.meta.get("seriesuid", "")), "coordX": at[0], "coordY": at[1],
                   "coordZ": at[2], "diameter_mm": diameter, "class": 1}  # fmt: skip
            d[self.positives_key] = [*d.get(self.positives_key, []), row]
            return d
        return d


RandInjectNoduleD = RandInjectNoduleDict = RandInjectNoduled
