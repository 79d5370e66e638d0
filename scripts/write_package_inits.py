"""Write every ``lungcad_transforms`` subpackage ``__init__.py`` from its modules' ``__all__``.

Each package re-exports the public names of the modules below it, lazily (``utils/lazy.py``). Run after
adding a module or changing an ``__all__``; ``--check`` only reports stale files (the test suite runs it).

    python scripts/write_package_inits.py [--check]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lungcad_transforms"

# the docstring of each generated __init__.py; a package missing here is an error, so that none goes undescribed
DOCS = {
    "transforms": "lungcad transforms, MONAI style: an array transform in ``<area>/array.py``, its dictionary twin and\n"
    "aliases in ``<area>/dictionary.py``, pure functions in ``<area>/functional.py``.",
    "transforms/io": "Transforms that load, check and save scans.",
    "transforms/lung": "The lung mask: threshold, components, outside air removed, dense masses the lung encloses, dilation.",
    "transforms/intensity": "Intensity transforms: masked normalisation, body-weight SUV.",
    "transforms/spatial": "Spatial transforms: multi-scale physical patches, physically consistent shifts.",
    "transforms/post": "Post-processing: candidates from probability maps.",
    "transforms/petct": "PET/CT transforms: PET onto the CT grid in SUV, CT windows, the network's channel stack.",
    "transforms/registration": "Registration: PET onto the MR grid by world geometry or mutual-information registration (ITK-Elastix).",
    "data": "The I/O boundary: image reading and writing, DICOM series, coordinates, CSV tables, datasets.",
    "handlers": "Ignite handlers shared by the lungcad bundles.",
    "metrics": "Metrics of the field: LUNA16 FROC / CPM.",
    "visualize": "Montages, Grad-CAM heatmaps and FROC plots.",
    "utils": "Atomic outputs, file locks, checkpoint guards and lazy package exports.",
    "networks": "Networks of the lungcad bundles; the classes live in ``networks.nets``, as in MONAI.",
    "networks/nets": "Networks the lungcad bundles use that MONAI does not ship in the needed form.",
    "apps": "Jobs that compose the layers below them, one folder each.",
    "apps/phantoms": "Synthetic CT, PET and MR phantoms with known nodules, and phantom datasets on disk.",
    "apps/lidc": "LIDC-IDRI: reader XML, consensus masks and dataset preparation.",
    "apps/luna16": "LUNA16: dataset preparation and the FROC / CPM evaluation command.",
    "apps/prepared": "Prepared datasets: sphere labels, the labels/datalist/annotations folder and the preparer command line.",
    "apps/detection": "Nodule detection data: candidate patch datasets and phantom candidate tables.",
    "apps/cad": "The CAD jobs run from the command line: lung masking of a scan, the demo.",
    "apps/ctgan": "CT-GAN: in-painting generators that inject or remove lung nodules, their training data and the file edits.",
    "apps/petct": "PET/CT: paired synthetic FDG PET/CT studies (the PET/CT classifier's embedded data).",
    "apps/mrpet": "MR/PET: paired synthetic chest MR + PET studies, patients on one grid, slice samples, results and Grad-CAM.",
    "apps/zoo": "MONAI Model Zoo readiness: the zoo's bundle checks offline, self-contained export, bundle zips.",
    "apps/hybrid": "Hybrid training data: synthetic nodules inserted into real, unannotated chest CTs.",
}


def _public_names(module: Path) -> list[str]:
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return list(ast.literal_eval(node.value))
    return []


def _has_public_names(folder: Path) -> bool:
    return any(_public_names(m) for m in folder.rglob("*.py") if m.name != "__init__.py")


def _tuple_lines(name: str, items: list[str]) -> list[str]:
    if len(items) > 1:
        return [f"{name} = (", *(f'    "{s}",' for s in items), ")"]
    return [f"{name} = (" + "".join(f'"{s}",' for s in items) + ")"]


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def init_text(folder: Path) -> str:
    """The ``__init__.py`` that ``folder`` (a subpackage of lungcad_transforms) should have."""
    key = folder.relative_to(PACKAGE).as_posix()
    subpackages = sorted(p.name for p in folder.iterdir() if (p / "__init__.py").is_file())
    # a parent serves its children's names through their own __all__ instead of listing them again;
    # apps are the exception: each app is reached as a subpackage, not by its names
    modules = [] if key == "apps" else sorted(folder.glob("*.py"))
    reexport = key != "apps" and any(_has_public_names(folder / s) for s in subpackages)
    names = {
        name: _dotted(module)
        for module in modules
        if module.name != "__init__.py"
        for name in _public_names(module)
    }
    lines = [f'"""{DOCS[key]}"""', "", "from __future__ import annotations", ""]
    lines += ["from lungcad_transforms.utils.lazy import lazy_exports", ""]
    # laid out as `ruff format` leaves it, so that a formatted tree is never reported stale
    lines += _tuple_lines("_SUBPACKAGES", subpackages)
    own = ["_NAMES = {", *(f'    "{n}": "{m}",' for n, m in names.items()), "}"] if names else ["_NAMES = {}"]
    if reexport:
        lines[4] = "from lungcad_transforms.utils.lazy import lazy_exports, reexported"
        own = (["_OWN_NAMES" + own[0][len("_NAMES") :], *own[1:]] if names else []) + [
            "_NAMES = reexported(__name__, _SUBPACKAGES" + (", _OWN_NAMES)" if names else ")")
        ]
    lines += own
    lines += [
        "__all__ = sorted(_NAMES)",
        "__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale __init__.py files, write nothing")
    args = parser.parse_args(argv)
    folders = sorted(
        p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE and "__pycache__" not in p.parts
    )
    missing = [
        f.relative_to(PACKAGE).as_posix() for f in folders if f.relative_to(PACKAGE).as_posix() not in DOCS
    ]
    if missing:
        print(f"no docstring in DOCS for: {', '.join(missing)}", file=sys.stderr)
        return 1
    stale = []
    for folder in folders:
        target = folder / "__init__.py"
        text = init_text(folder)
        if target.read_text(encoding="utf-8") != text:
            stale.append(str(target.relative_to(PACKAGE.parent)))
            if not args.check:
                target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("stale (run scripts/write_package_inits.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
