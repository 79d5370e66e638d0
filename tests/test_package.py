"""The package's shape: lazy public names, the layering DESIGN.md draws, and every exported name resolves."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lungcad_transforms"

# a module may import its own layer and the layers below it, never one above (DESIGN.md, "Package layout")
LAYER = {
    "errors": 0,
    "utils": 0,
    "data": 1,
    "transforms": 2,
    "networks": 2,
    "metrics": 3,
    "handlers": 3,
    "visualize": 3,
    "apps": 4,
    "cli": 5,
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_import_loads_nothing_heavy():
    code = (
        "import sys, lungcad_transforms as l; "
        "heavy = [m for m in ('itk', 'pydicom', 'monai', 'torch', 'vtk', 'highdicom', 'nibabel') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_answers_without_loading_the_toolkit():
    code = (
        "import sys; from lungcad_transforms.cli import build_parser; build_parser(); "
        "print(','.join(m for m in ('itk', 'pydicom', 'monai', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_users_type_keep_working():
    import lungcad_transforms
    from lungcad_transforms import LungMask, LungMaskd

    assert LungMask.__module__ == "lungcad_transforms.transforms.lung.array"
    assert LungMaskd.__module__ == "lungcad_transforms.transforms.lung.dictionary"
    assert lungcad_transforms.transforms.LungMaskD is LungMaskd
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = lungcad_transforms.NoSuchThing


@pytest.mark.parametrize(
    "package",
    sorted(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
        for p in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in p.parts
    ),
)
def test_every_exported_name_resolves(package: str):
    module = importlib.import_module(package)
    for name in getattr(module, "__all__", []):
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_imports_point_down_only():
    wrong = []
    for path in _modules():
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = _layer_of(dotted)
        if own == "__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # imports for annotations only (under `if TYPE_CHECKING:`) are not run, so they may name any layer
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if (
                id(node) not in typing_only
                and isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("lungcad_transforms.")
            ):
                target = _layer_of(node.module)
                if target in LAYER and LAYER[target] > LAYER[own]:
                    wrong.append(f"{dotted} imports {node.module}")
    assert wrong == []


def test_modules_are_of_readable_size():
    # DESIGN.md: a module holds one concern, about 400 lines at most
    long = {
        str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}


def test_package_inits_export_every_module_name():
    # a module's new public name must be reachable from its package: the generated __init__ files are current
    script = PACKAGE.parent / "scripts" / "write_package_inits.py"
    out = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
