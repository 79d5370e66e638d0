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
- copies into ``scripts/lungcad_transforms/`` only the package modules the bundle needs: those its configs
  name (``lungcad_transforms.transforms.LungMaskd`` is found through the lazy name table of
  ``transforms/__init__.py``: ``transforms/lung/dictionary.py``) and, transitively, every package module
  those import (module level or inside a function; ``if TYPE_CHECKING:`` blocks excluded), plus the
  ``__init__.py`` files on the way (lazy, so a name whose module was left out fails only when used). The
  closure is found by reading the code (``ast``), not by importing it: an import inside a function that a
  trial import would not reach is still found. Every reference to the package, in the configs and in the
  copied code, is rewritten to ``scripts.lungcad_transforms`` (the Model Zoo convention: the bundle folder
  is on ``sys.path`` when it is run with ``python -m`` from inside it);
- sets ``bundle_root`` to ``"."`` in every config and drops the ``lungcad`` package from
  ``required_packages_version`` in ``metadata.json`` (its code is now inside the bundle);
- writes everything to a temporary folder next to ``--out`` and renames it when complete, so an
  interrupted export leaves nothing half-written; an existing ``--out`` is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
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
        >>> vendor_references('"$import lungcad_transforms.data"')
        '"$import scripts.lungcad_transforms.data"'
        >>> vendor_references("from lungcad_transforms.data.image_reader import load_image")
        'from scripts.lungcad_transforms.data.image_reader import load_image'
        >>> vendor_references("scripts.lungcad_transforms.data")  # already vendored: unchanged
        'scripts.lungcad_transforms.data'
    """
    return _REFERENCE.sub(VENDORED, text)


def _module_file(module: str) -> Path | None:
    """The source file of package module ``module`` (``a.b``: ``a/b/__init__.py`` or ``a/b.py``), or None."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _lazy_table(package: str) -> dict[str, str]:
    """Name -> defining module of a package's lazy ``__init__`` (``_NAMES``; the top level's ``_PUBLIC``)."""
    # importing a package __init__ is cheap (its names load on first use); its table is built with
    # dict.fromkeys(...), which ast.literal_eval cannot read
    module = importlib.import_module(package)
    if package == PACKAGE:
        return {name: f"{PACKAGE}.{target}" for name, target in getattr(module, "_PUBLIC", {}).items()}
    return dict(getattr(module, "_NAMES", {}))


def _modules_for(dotted: str) -> set[str]:
    """The package modules needed to reach ``dotted``: a module, or a name looked up through modules.

    Examples:
        >>> sorted(_modules_for("lungcad_transforms.transforms.LungMaskd"))
        ['lungcad_transforms.transforms', 'lungcad_transforms.transforms.lung.dictionary']
    """
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        module = ".".join(parts[:n])
        path = _module_file(module)
        if path is not None:
            break
    else:
        return set()
    needed = {module}
    rest = parts[n:]
    if rest and path.name == "__init__.py":
        target = _lazy_table(module).get(rest[0])
        if target is not None and target != module:
            needed |= _modules_for(f"{target}.{rest[0]}")
    return needed


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _references_in_code(module: str, path: Path) -> set[str]:
    """Dotted package names that module ``module`` imports or reaches by attribute (``lungcad_transforms.x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # annotations-only imports never run, so they need not be exported
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package_parts[: len(package_parts) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                found.add(".".join([value.id, *reversed(chain)]))
    return {ref for ref in found if ref == PACKAGE or ref.startswith(PACKAGE + ".")}


def needed_modules(config_texts: list[str]) -> set[str]:
    """Every package module that configs ``config_texts`` (JSON text) use, transitively, with their packages.

    Examples:
        >>> modules = needed_modules(['{"net": {"_target_": "lungcad_transforms.networks.nets.MGICNN"}}'])
        >>> "lungcad_transforms.networks.nets.mgicnn" in modules, "lungcad_transforms.apps.lidc" in modules
        (True, False)
    """
    pending = [PACKAGE]
    for text in config_texts:
        for ref in re.findall(rf"(?<![\w.]){PACKAGE}(?:\.\w+)*", text):
            pending.extend(_modules_for(ref))
    needed: set[str] = set()
    while pending:
        module = pending.pop()
        if module in needed:
            continue
        needed.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:n]) for n in range(1, len(parts)))  # the __init__.py files on the way
        for ref in _references_in_code(module, _module_file(module)):
            pending.extend(_modules_for(ref))
    return needed


def _export_config(src: Path, dst: Path) -> str:
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
    text = json.dumps(config, indent=4)
    dst.write_text(vendor_references(text) + "\n", encoding="utf-8")
    return text


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
        for module in sorted(needed_modules(config_texts)):
            src = _module_file(module)
            dst = scripts / src.relative_to(REPO_ROOT)
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
