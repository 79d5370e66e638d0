"""Inject a nodule into, or remove one from, a loaded CT with the trained CT-GAN generators."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from lungcad_transforms.apps.ctgan.cubes import (
    MASK_SIZE,
    cut_cube,
    denormalise_hu,
    generator_input,
    normalise_hu,
    paste_cube,
)
from lungcad_transforms.data.coords import world_to_voxel
from lungcad_transforms.errors import InputError

__all__ = ["NoduleEditor", "inject", "remove", "record_generator_settings"]


# Removal blends over 1 mm only, and takes its noise from beside the box: with the injection's 3 mm ramp
# a 14 mm nodule's rim (1 mm inside the 16 mm box) would keep two thirds of its density.
_PASTE: dict[str, dict[str, Any]] = {
    "injector": {"blend_mm": 3.0, "texture": "local"},
    "remover": {"blend_mm": 1.0, "texture": "neighbour"},
}


def _generator_from_bundle(bundle_dir: Path, task: str, device: torch.device) -> torch.nn.Module:
    """The generator of ``task`` as the bundle's train.json defines it, with ``models/<task>.pt`` loaded."""
    from monai.bundle import ConfigParser

    from lungcad_transforms.utils.checkpoint import load_checkpoint

    weights = bundle_dir / "models" / f"{task}.pt"
    if not weights.is_file():
        raise InputError(
            weights,
            f"no trained {task} weights: train them with `python -m monai.bundle run training --config_file "
            f"{bundle_dir / 'configs' / 'train.json'} --task {task}` or copy a trained {task}.pt here",
        )
    from lungcad_transforms.data.datasets import bundle_dir as find_bundle

    config = bundle_dir / "configs" / "train.json"
    if not config.is_file():  # a bundle_root of a training run holds models/ only: the repository's configs
        config = Path(find_bundle("lung_nodule_ct_gan")) / "configs" / "train.json"
    parser = ConfigParser()
    parser.read_config(str(config))
    hyper = bundle_dir / "models" / f"{task}_network.json"  # network overrides a trained run recorded
    if hyper.is_file():
        for key, value in json.loads(hyper.read_text(encoding="utf-8")).items():
            parser[key] = value
    net = parser.get_parsed_content("generator_def", instantiate=True)
    state = load_checkpoint(weights, map_location="cpu")
    net.load_state_dict(state.get("generator", state))
    return net.to(device).eval()


class NoduleEditor:
    """Edit CTs with a CT-GAN bundle's injector and remover (loaded on first use).

    Args:
        bundle_dir: a trained (or exported) copy of the ``lung_nodule_ct_gan`` bundle; default the repository's.
        device: torch device; default CUDA when present.
        check_lungs: refuse locations outside the lung mask (``LungMask``).

    Examples:
        >>> editor = NoduleEditor()  # doctest: +SKIP
        >>> edited = editor.inject(load_image("ct.nii.gz"), (-80.2, 31.5, -120.0), diameter_mm=8.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        bundle_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        check_lungs: bool = True,
    ) -> None:
        from lungcad_transforms.data.datasets import bundle_dir as find_bundle

        self.bundle_dir = (
            Path(bundle_dir) if bundle_dir is not None else Path(find_bundle("lung_nodule_ct_gan"))
        )
        self.device = (
            torch.device(device)
            if device is not None
            else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.check_lungs = check_lungs
        self._nets: dict[str, torch.nn.Module] = {}
        self._lung_cache: tuple[int, np.ndarray] | None = None

    def generator(self, task: str) -> torch.nn.Module:
        if task not in self._nets:
            self._nets[task] = _generator_from_bundle(self.bundle_dir, task, self.device)
        return self._nets[task]

    def _checked(self, ct: MetaTensor, location_lps: Sequence[float]) -> tuple[np.ndarray, np.ndarray, str]:
        from lungcad_transforms.transforms.io.array import ValidateCT

        where = str(ct.meta.get("filename_or_obj", "<scan>")) if isinstance(ct, MetaTensor) else "<scan>"
        ValidateCT()(ct)
        hu = convert_to_numpy(ct, dtype=np.float32)[0]
        affine = convert_to_numpy(ct.affine, dtype=np.float64)
        loc = np.asarray(location_lps, dtype=np.float64)
        if loc.shape != (3,) or not np.isfinite(loc).all():
            raise InputError(where, f"location must be 3 finite LPS mm values, got {location_lps}")
        cut_cube(hu, affine, loc, where)  # refuses outside the scan / crossing its border
        if self.check_lungs:
            lungs = self.lung_mask(ct)
            v = np.floor(world_to_voxel(loc, affine)[0] + 0.5).astype(int)
            if not lungs[tuple(v)]:
                raise InputError(where, f"location {loc.tolist()} (LPS mm) is outside the lungs")
        return hu, affine, where

    def lung_mask(self, ct: MetaTensor) -> np.ndarray:
        """The lung mask of ``ct`` (kept for the last scan asked, so several edits mask once)."""
        from lungcad_transforms.transforms.lung.array import LungMask

        key = id(ct)
        if self._lung_cache is None or self._lung_cache[0] != key:
            self._lung_cache = (key, convert_to_numpy(LungMask(dtype=bool)(ct))[0].astype(bool))
        return self._lung_cache[1]

    def _edit(
        self, ct: MetaTensor, location_lps: Sequence[float], diameter_mm: float, task: str
    ) -> MetaTensor:
        hu, affine, where = self._checked(ct, location_lps)
        cube = cut_cube(hu, affine, location_lps, where)
        x = torch.as_tensor(generator_input(normalise_hu(cube).astype(np.float32), diameter_mm))[None]
        with torch.no_grad():
            out = self.generator(task)(x.to(self.device)).float().cpu().numpy()[0, 0]
        new, _ = paste_cube(hu, affine, location_lps, denormalise_hu(out), **_PASTE[task])
        changed = new != hu
        new = np.where(changed, np.rint(new), hu)  # CT is stored in whole HU
        return MetaTensor(torch.as_tensor(new[None], dtype=ct.dtype), meta=dict(ct.meta))

    def inject(
        self, ct: MetaTensor, location_lps_mm: Sequence[float], diameter_mm: float = 8.0
    ) -> MetaTensor:
        """A copy of ``ct`` (RAS MetaTensor from ``load_image``) with a nodule of ``diameter_mm`` at the location.

        Raises:
            InputError: not a CT; the location is outside the scan or the lungs, or its cube crosses the
                scan border; the diameter does not fit the in-painted region; no trained injector.
        """
        if not 0 < float(diameter_mm) <= MASK_SIZE - 2:
            raise InputError(str(ct.meta.get("filename_or_obj", "<scan>")),
                             f"diameter {diameter_mm} mm outside (0, {MASK_SIZE - 2}] mm, what the injector in-paints")  # fmt: skip
        return self._edit(ct, location_lps_mm, float(diameter_mm), "injector")

    def remove(self, ct: MetaTensor, location_lps_mm: Sequence[float]) -> MetaTensor:
        """A copy of ``ct`` with the ``MASK_SIZE`` mm box at the location in-painted with nodule-free lung."""
        return self._edit(ct, location_lps_mm, 0.0, "remover")


_DEFAULT: dict[Any, NoduleEditor] = {}


def _editor(bundle_dir: str | os.PathLike | None) -> NoduleEditor:
    if bundle_dir not in _DEFAULT:
        _DEFAULT[bundle_dir] = NoduleEditor(bundle_dir)
    return _DEFAULT[bundle_dir]


def inject(
    ct: MetaTensor, location_lps_mm: Sequence[float], diameter_mm: float = 8.0, bundle_dir: Any = None
) -> MetaTensor:
    """Inject a nodule: :meth:`NoduleEditor.inject` with the bundle at ``bundle_dir``."""
    return _editor(bundle_dir).inject(ct, location_lps_mm, diameter_mm)


def remove(ct: MetaTensor, location_lps_mm: Sequence[float], bundle_dir: Any = None) -> MetaTensor:
    """Remove a nodule: :meth:`NoduleEditor.remove` with the bundle at ``bundle_dir``."""
    return _editor(bundle_dir).remove(ct, location_lps_mm)


def record_generator_settings(ckpt_dir: str | os.PathLike, task: str, **settings: Any) -> str:
    """Write ``<ckpt_dir>/<task>_network.json`` (the train.json keys the generator was built with), atomically.

    The editor rebuilds the generator from train.json with these keys, so a run with other network
    sizes (``--generator_channels``) loads its own weights.
    """
    from lungcad_transforms.utils.atomic import atomic_file

    path = Path(ckpt_dir) / f"{task}_network.json"
    with atomic_file(path) as tmp:
        tmp.write_text(
            json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}) + "\n"
        )
    return str(path)
