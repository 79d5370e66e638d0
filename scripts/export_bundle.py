#!/usr/bin/env python
"""Export a lungcad bundle as a self-contained MONAI bundle, runnable with MONAI and its listed packages alone.

    python scripts/export_bundle.py bundles/lung_nodule_ct_segmentation --out dist/lung_nodule_ct_segmentation

The exported folder is laid out as the MONAI Model Zoo expects and runs from inside itself:

    cd dist/lung_nodule_ct_segmentation
    python -m monai.bundle run training --config_file configs/train.json

What the export does (MONAI's own ``monai.bundle`` tooling packages a bundle folder but does not vendor the
Python code its configs import, which is why this step exists):

- copies ``configs/``, ``docs/``, ``LICENSE`` and ``models/`` (``README.md`` and, unless
  ``--no-weights``, the trained ``*.pt`` files); never ``data/`` or ``eval/`` (generated on first use);
- copies the ``lungcad_transforms`` package into ``scripts/lungcad_transforms/`` and rewrites every
  reference to it, in the configs and in the copied code, to ``scripts.lungcad_transforms`` (the Model Zoo
  convention: the bundle folder is on ``sys.path`` when it is run with ``python -m`` from inside it);
- sets ``bundle_root`` to ``"."`` in every config and drops the ``lungcad`` package from
  ``required_packages_version`` in ``metadata.json`` (its code is now inside the bundle);
- writes everything to a temporary folder next to ``--out`` and renames it when complete, so an
  interrupted export leaves nothing half-written; an existing ``--out`` is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lungcad_transforms.errors import InputError  # noqa: E402
from lungcad_transforms.utils.atomic import atomic_dir  # noqa: E402

PACKAGE = "lungcad_transforms"
VENDORED = f"scripts.{PACKAGE}"
# a reference to the package as a name of its own: not already vendored, not part of a longer name
_REFERENCE = re.compile(rf"(?<![\w.]){PACKAGE}\b")


def vendor_references(text: str) -> str:
    """Point every ``lungcad_transforms`` reference in ``text`` (code or config) at the vendored copy.

    Examples:
        >>> vendor_references('"$import lungcad_transforms.datasets"')
        '"$import scripts.lungcad_transforms.datasets"'
        >>> vendor_references("from lungcad_transforms.io import load_image")
        'from scripts.lungcad_transforms.io import load_image'
        >>> vendor_references("scripts.lungcad_transforms.io")  # already vendored: unchanged
        'scripts.lungcad_transforms.io'
    """
    return _REFERENCE.sub(VENDORED, text)


def _export_config(src: Path, dst: Path) -> None:
    config = json.loads(src.read_text(encoding="utf-8"))
    if "bundle_root" in config:
        config["bundle_root"] = "."
    if src.name == "metadata.json":
        config.get("required_packages_version", {}).pop("lungcad", None)
    imports = config.get("imports")
    if isinstance(imports, list) and any(_REFERENCE.search(str(i)) for i in imports):
        # MONAI binds "$import a.b" under the name "a.b", never "a": expressions reach the vendored
        # package as scripts.lungcad_transforms..., so "scripts" itself must be imported
        config["imports"] = ["$import scripts", *imports]
    dst.write_text(vendor_references(json.dumps(config, indent=4)) + "\n", encoding="utf-8")


def export_bundle(bundle: str | Path, out: str | Path, weights: bool = True, force: bool = False) -> Path:
    """Write the self-contained export of ``bundle`` to ``out``; return ``out``.

    Raises:
        InputError: ``bundle`` is not a bundle folder (no ``configs/metadata.json``), or ``out`` exists and
            ``force`` is not set.
    """
    bundle, out = Path(bundle).resolve(), Path(out).resolve()
    if not (bundle / "configs" / "metadata.json").is_file():
        raise InputError(bundle, "is not a bundle folder (no configs/metadata.json)")
    if out.exists() and not force:
        raise InputError(out, "exists already; pass --force to replace it")
    if out == bundle or bundle in out.parents:
        raise InputError(out, "is inside the bundle being exported; export somewhere else")
    with atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # a folder to share: not the private mode of a temporary folder
        (tmp / "configs").mkdir()
        for src in sorted((bundle / "configs").iterdir()):
            if src.suffix == ".json":
                _export_config(src, tmp / "configs" / src.name)
            elif src.is_file():
                shutil.copy2(src, tmp / "configs" / src.name)
        for name in ("docs", "LICENSE"):
            if (bundle / name).is_dir():
                shutil.copytree(bundle / name, tmp / name)
            elif (bundle / name).is_file():
                shutil.copy2(bundle / name, tmp / name)
        models = tmp / "models"
        models.mkdir()
        for src in sorted((bundle / "models").rglob("*")) if (bundle / "models").is_dir() else []:
            if src.is_file() and (src.suffix != ".pt" or weights):
                dst = models / src.relative_to(bundle / "models")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        scripts = tmp / "scripts"
        scripts.mkdir()
        (scripts / "__init__.py").write_text("", encoding="utf-8")
        package = REPO_ROOT / PACKAGE
        for src in sorted(package.rglob("*.py")):
            if "__pycache__" in src.parts:
                continue
            dst = scripts / PACKAGE / src.relative_to(package)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(vendor_references(src.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="the bundle folder, e.g. bundles/lung_nodule_ct_segmentation")
    parser.add_argument("--out", required=True, help="folder to create for the exported bundle")
    parser.add_argument("--no-weights", action="store_true", help="leave the trained models/*.pt out")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    try:
        out = export_bundle(args.bundle, args.out, weights=not args.no_weights, force=args.force)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"exported {args.bundle} to {out}; run it from there: python -m monai.bundle run --config_file configs/..."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
