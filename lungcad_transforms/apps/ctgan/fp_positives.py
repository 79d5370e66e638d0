"""GAN positives for false-positive reduction: nodules injected into training scans, cut as multi-scale patches."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungcad_transforms.data.datasets import file_sha256
from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["GAN_POSITIVES_FILE", "ensure_gan_positives"]


GAN_POSITIVES_FILE = "gan_positives.json"


def _settings_match(folder: Path, settings: dict[str, Any]) -> bool:
    listing = folder / GAN_POSITIVES_FILE
    if not listing.is_file():
        return False
    try:
        return json.loads(listing.read_text(encoding="utf-8")).get("settings") == settings
    except (OSError, json.JSONDecodeError):
        return False


def ensure_gan_positives(
    out_dir: str | os.PathLike,
    scans: Any,
    annotations: str | os.PathLike | Sequence[dict[str, Any]] | None = None,
    bundle_dir: str | os.PathLike | None = None,
    split: str | None = "training",
    per_scan: int = 3,
    diameter_mm: Sequence[float] = (4.0, 12.0),
    seed: int = 0,
    margin_mm: float = 12.0,
    scales_mm: Sequence[Sequence[float]] = ((20.0, 20.0, 12.0), (30.0, 30.0, 18.0), (40.0, 40.0, 24.0)),
    patch_size: Sequence[int] = (20, 20, 12),
    hu_window: Sequence[float] | None = (-1000.0, 400.0),
) -> str:
    """Inject ``per_scan`` CT-GAN nodules into each scan and store their patches; return the listing's path.

    For every scan (``scans`` as :func:`~lungcad_transforms.data.datasets.resolve_scans` takes it, the
    ``split`` of a datalist), :class:`~lungcad_transforms.apps.ctgan.augmentation.RandInjectNoduled` is
    applied ``per_scan`` times (seeded per scan from ``seed``), each nodule at a lung point ``margin_mm``
    inside the lung mask and clear of the scan's annotated nodules and of the ones injected before; the
    edited scan is then cut at each injected centre with the FP-reduction bundle's patch geometry
    (``scales_mm``, ``patch_size``, ``hu_window``). ``out_dir`` receives ``<seriesuid>.npz`` (arrays
    ``patch_s1..3`` of shape (M, *patch_size)), ``injected.csv`` (LUNA16 ``annotations.csv`` form: centres, LPS mm, and diameters) and
    :data:`GAN_POSITIVES_FILE`, a datalist of ``{"patches", "seriesuid"}`` entries: the FP-reduction
    bundle's ``extra_positives`` reads it as it is. The folder is made under a file lock and appears
    complete or not at all; it is kept while its settings (these arguments and the injector's sha256) are
    unchanged, and made again when they change.

    Raises:
        InputError: no scans, no trained injector in ``bundle_dir``, or no nodule could be placed in any scan.
    """
    from lungcad_transforms.apps.ctgan.augmentation import RandInjectNoduled
    from lungcad_transforms.apps.ctgan.editor import NoduleEditor
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.datasets import resolve_scans
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.tables import read_annotations, write_annotations_csv
    from lungcad_transforms.transforms.spatial.functional import PATCH_KEYS, extract_multiscale_patches
    from lungcad_transforms.utils.atomic import atomic_dir, atomic_file
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(out_dir)
    entries = (
        resolve_scans(scans, split=split) if isinstance(scans, (str, os.PathLike)) else resolve_scans(scans)
    )
    if not entries:
        raise InputError(str(scans), "no scans to inject GAN nodules into")
    editor = NoduleEditor(bundle_dir)
    weights = editor.bundle_dir / "models" / "injector.pt"
    if not weights.is_file():
        editor.generator("injector")  # raises the InputError that says how to train it
    if isinstance(annotations, (str, os.PathLike)):
        annotations = read_annotations(annotations)
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for row in annotations or []:
        by_uid.setdefault(str(row["seriesuid"]), []).append(dict(row))
    settings = {
        "scans": [[str(e["image"]), str(e["seriesuid"])] for e in entries], "per_scan": int(per_scan),
        "diameter_mm": [float(v) for v in diameter_mm], "seed": int(seed), "margin_mm": float(margin_mm),
        "scales_mm": [[float(v) for v in s] for s in scales_mm], "patch_size": [int(v) for v in patch_size],
        "hu_window": None if hu_window is None else [float(v) for v in hu_window],
        "avoided_nodules": sum(len(by_uid.get(str(e["seriesuid"]), [])) for e in entries),
        "injector_sha256": file_sha256(weights),
    }  # fmt: skip
    with dataset_lock(root):
        if _settings_match(root, settings):
            return str(root / GAN_POSITIVES_FILE)
        logger.info("injecting %d GAN nodule(s) into each of %d scan(s) -> %s", per_scan, len(entries), root)
        listing: list[dict[str, str]] = []
        injected: list[dict[str, Any]] = []
        with atomic_dir(root) as tmp:
            for i, entry in enumerate(entries):
                uid = str(entry["seriesuid"])
                inject = RandInjectNoduled("image", editor, prob=1.0, diameter_mm=diameter_mm, margin_mm=margin_mm,
                                           avoid_key="annotated")  # fmt: skip
                inject.set_random_state(seed=(int(seed) * 100003 + i) % (2**32))
                data: dict[str, Any] = {"image": load_image(entry), "annotated": by_uid.get(uid, [])}
                for _ in range(int(per_scan)):
                    data = inject(data)
                rows = data.get("injected_nodules", [])
                if not rows:
                    logger.warning("no GAN nodule could be placed in %s", entry["image"])
                    continue
                image = data["image"]
                affine = image.affine.numpy()
                centres = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows], dtype=np.float64)
                patches, _ = extract_multiscale_patches(image, affine, world_to_voxel(centres, affine),
                                                        scales_mm, patch_size, hu_window)  # fmt: skip
                with atomic_file(tmp / f"{uid}.npz") as f, open(f, "wb") as fh:
                    np.savez(fh, **{k: patches[:, s].astype(np.float32) for s, k in enumerate(PATCH_KEYS)})
                listing.append({"patches": f"{uid}.npz", "seriesuid": uid})
                injected += [{**r, "seriesuid": uid} for r in rows]
            if not listing:
                raise InputError(str(scans), "no GAN nodule could be placed in any scan (lungs too small?)")
            write_annotations_csv(injected, tmp / "injected.csv")  # LUNA16 annotations form
            with atomic_file(tmp / GAN_POSITIVES_FILE) as f:
                f.write_text(json.dumps({"training": listing, "settings": settings}, indent=1) + "\n")
    return str(root / GAN_POSITIVES_FILE)
