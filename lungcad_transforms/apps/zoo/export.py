"""Export a lungcad bundle as a self-contained MONAI bundle (a folder or a zip), runnable with MONAI alone.

    lungcad export-bundle lung_nodule_ct_segmentation --out dist/lung_nodule_ct_segmentation
    cd dist/lung_nodule_ct_segmentation && python -m monai.bundle run training --config_file configs/train.json

What the export holds and does:

- ``configs/``, ``docs/``, ``LICENSE`` and ``models/`` (``README.md`` and, unless ``weights=False``, the
  trained ``*.pt`` / ``*.ts`` files); never ``data/`` or ``eval/`` (generated on first use);
- ``scripts/lungcad_transforms/``: only the package modules the bundle's configs reach (``imports.py``),
  every reference to the package rewritten to ``scripts.lungcad_transforms`` (the Model Zoo convention: the
  bundle folder is on ``sys.path`` when it is run with ``python -m`` from inside it);
- ``bundle_root`` set to ``"."`` in every config, ``lungcad`` dropped from ``required_packages_version``;
- ``large_files.yml`` (Model Zoo form) listing each weight file of the source bundle with its SHA-256 and,
  given ``weights_url``, the address it will be published at; source weights that their own
  ``large_files.yml`` lists are checked first, so a corrupted copy is never exported;
- with ``zip_output``: one zip holding the bundle folder, and ``model_info.json`` beside it with the zip's
  checksums under ``<name>_v<version>``, as the Model Zoo's ``models/model_info.json`` records them.

Everything is written under a temporary name and renamed when complete: an interrupted export leaves
nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lungcad_transforms.apps.zoo.archive import update_model_info, write_bundle_zip
from lungcad_transforms.apps.zoo.imports import (
    PACKAGE_ROOT,
    module_file,
    needed_modules,
    references_package,
    vendor_references,
)
from lungcad_transforms.data.datasets import file_sha256, find_bundle
from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_dir
from lungcad_transforms.utils.checkpoint import LARGE_FILES_NAMES, expected_hash, verify_checkpoint

__all__ = ["WEIGHT_SUFFIXES", "resolve_bundle", "file_sha256", "large_files_text", "export_bundle"]

WEIGHT_SUFFIXES = (".pt", ".ts", ".pth", ".onnx")
_NOT_EXPORTED = ("data", "eval")  # generated on first use, or run outputs


def resolve_bundle(bundle: str | os.PathLike) -> Path:
    """The folder of ``bundle``: a bundle folder, or the name of one of the repository's bundles.

    Raises:
        InputError: neither a folder with ``configs/metadata.json`` nor the name of such a folder under
            ``bundles/``.

    Examples:
        >>> resolve_bundle("lung_nodule_ct_segmentation").name
        'lung_nodule_ct_segmentation'
    """
    found = find_bundle(bundle)
    if found is None:
        raise InputError(
            bundle, "is not a bundle folder (no configs/metadata.json) nor the name of one under bundles/"
        )
    return found


def large_files_text(entries: list[dict[str, str]]) -> str:
    """``large_files.yml`` text (Model Zoo form) for entries with ``path``, ``url``, ``hash_val``, ``hash_type``.

    Examples:
        >>> print(large_files_text([{"path": "models/model.pt", "url": "", "hash_val": "ab", "hash_type": "sha256"}]))
        large_files:
          - path: "models/model.pt"
            url: ""
            hash_val: "ab"
            hash_type: "sha256"
        <BLANKLINE>
    """
    lines = ["large_files:"]
    for entry in entries:
        lines.append(f"  - path: {json.dumps(entry['path'])}")
        lines += [f"    {key}: {json.dumps(entry[key])}" for key in ("url", "hash_val", "hash_type")]
    return "\n".join(lines) + "\n"


def _weight_entries(bundle: Path, weights_url: str | None) -> list[dict[str, str]]:
    models = bundle / "models"
    entries = []
    for src in sorted(models.rglob("*")) if models.is_dir() else []:
        if src.is_file() and src.suffix in WEIGHT_SUFFIXES:
            if expected_hash(src) is not None:
                verify_checkpoint(src)  # never export a copy that differs from its published hash
            rel = src.relative_to(bundle).as_posix()
            url = f"{weights_url.rstrip('/')}/{rel}" if weights_url else ""
            entries.append({"path": rel, "url": url, "hash_val": file_sha256(src), "hash_type": "sha256"})
    return entries


def _export_config(src: Path, dst: Path) -> str:
    config = json.loads(src.read_text(encoding="utf-8"))
    if "bundle_root" in config:
        config["bundle_root"] = "."
    if src.name == "metadata.json":
        config.get("required_packages_version", {}).pop("lungcad", None)
    imports = config.get("imports")
    if isinstance(imports, list) and any(references_package(str(i)) for i in imports):
        # MONAI binds "$import a.b" under the name "a.b", never "a": expressions reach the vendored
        # package as scripts.lungcad_transforms..., so "scripts" itself must be imported
        config["imports"] = ["$import scripts", *imports]
    text = json.dumps(config, indent=4)
    dst.write_text(vendor_references(text) + "\n", encoding="utf-8")
    return text


def _write_bundle(bundle: Path, tmp: Path, weights: bool, weights_url: str | None) -> None:
    tmp.chmod(0o755)  # a folder to share: not the private mode of a temporary folder
    (tmp / "configs").mkdir()
    config_texts = []
    for src in sorted((bundle / "configs").iterdir()):
        if src.suffix == ".json":
            config_texts.append(_export_config(src, tmp / "configs" / src.name))
        elif src.is_file():
            shutil.copy2(src, tmp / "configs" / src.name)
    for name in ("docs", "LICENSE"):
        if (bundle / name).is_dir():
            shutil.copytree(bundle / name, tmp / name)
        elif (bundle / name).is_file():
            shutil.copy2(bundle / name, tmp / name)
    entries = _weight_entries(bundle, weights_url)
    models = tmp / "models"
    models.mkdir()
    for src in sorted((bundle / "models").rglob("*")) if (bundle / "models").is_dir() else []:
        if src.is_file() and (src.suffix not in WEIGHT_SUFFIXES or weights):
            dst = models / src.relative_to(bundle / "models")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    if entries:
        (tmp / LARGE_FILES_NAMES[0]).write_text(large_files_text(entries), encoding="utf-8")
    scripts = tmp / "scripts"
    scripts.mkdir()
    (scripts / "__init__.py").write_text("", encoding="utf-8")
    for module in sorted(needed_modules(config_texts)):
        src = module_file(module)
        dst = scripts / src.relative_to(PACKAGE_ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(vendor_references(src.read_text(encoding="utf-8")), encoding="utf-8")


def export_bundle(
    bundle: str | os.PathLike,
    out: str | os.PathLike,
    weights: bool = True,
    force: bool = False,
    zip_output: bool = False,
    weights_url: str | None = None,
) -> Path:
    """Write the self-contained export of ``bundle`` to ``out`` (a folder, or with ``zip_output`` a zip).

    Args:
        bundle: a bundle folder, or the name of one under the repository's ``bundles/``.
        out: the folder to create; with ``zip_output`` the zip file (``.zip`` is added if missing), with
            ``model_info.json`` written (or updated) beside it.
        weights: ship the trained weights (``models/*.pt``); ``large_files.yml`` lists them either way.
        force: replace an existing ``out``.
        zip_output: write a zip holding the bundle folder (named after the bundle) instead of a folder.
        weights_url: where the weight files will be published (``<url>/models/model.pt``), for the ``url``
            of the ``large_files.yml`` entries; empty when not given.

    Returns:
        the folder or zip written.

    Raises:
        InputError: ``bundle`` is not a bundle; ``out`` exists and ``force`` is not set, or lies inside
            the bundle; a weight file differs from the hash its bundle's ``large_files.yml`` lists.
    """
    bundle = resolve_bundle(bundle)
    out = Path(out).resolve()
    if zip_output and out.suffix != ".zip":
        out = out.with_name(out.name + ".zip")
    if out.exists() and not force:
        raise InputError(out, "exists already; pass --force to replace it")
    if out == bundle or bundle in out.parents:
        raise InputError(out, "is inside the bundle being exported; export somewhere else")
    if not zip_output:
        with atomic_dir(out) as tmp:
            _write_bundle(bundle, tmp, weights, weights_url)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.stem}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with atomic_dir(staging / bundle.name) as tmp:
            _write_bundle(bundle, tmp, weights, weights_url)
        write_bundle_zip(staging / bundle.name, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text(encoding="utf-8"))
    update_model_info(out, f"{bundle.name}_v{meta.get('version', '0.0.0')}")
    return out
